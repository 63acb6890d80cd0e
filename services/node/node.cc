#include "shardkit/services/node.h"

#include <algorithm>
#include <map>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cluster.h"
#include "gate_handler.h"
#include "route_checks.h"
#include "shardkit/message/codec.h"
#include "shardkit/message/json.h"
#include "shardkit/services/client.h"
#include "shardkit/services/registry.h"
#include "wire.h"

namespace shardkit::services {
namespace {

Message ReplyFromJson(std::string_view json) {
  auto parsed = ParseMessage(json);
  if (!parsed.ok()) return Message().SetString("error", parsed.status().ToString());
  return std::move(parsed).value();
}

bool SameListeners(const std::vector<ListenerConfig>& a, const std::vector<ListenerConfig>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!(a[i].endpoint == b[i].endpoint) || a[i].external != b[i].external ||
        a[i].token != b[i].token || a[i].max_message_bytes != b[i].max_message_bytes ||
        a[i].read_timeout_ms != b[i].read_timeout_ms) {
      return false;
    }
  }
  return true;
}

BusOptions BusOptionsFor(const NodeOptions& options) {
  BusOptions bus;
  bus.clock = &options.environment.clock_or_system();
  return bus;
}

}  // namespace

class Node::Impl {
 public:
  Impl(NodeConfig config, NodeOptions options)
      : config_(std::move(config)),
        options_(std::move(options)),
        runtime_(std::make_unique<IoRuntime>(config_.threads)),
        metrics_(std::make_shared<Metrics>()),
        bus_(BusOptionsFor(options_)) {}

  ~Impl() { Stop(std::chrono::milliseconds(0)); }

  Status Install(const NodeConfig& next);
  Status StartListeners();
  Status Reload(NodeConfig next);
  Status ReloadFromFile();
  void Stop(std::chrono::milliseconds grace);

  void Dispatch(Message message, ReplyFn reply);
  Status StartCluster();
  void AddClusterRoutes(const NodeConfig& next, Router& router,
                        std::map<std::string, std::shared_ptr<Handler>>& clients);
  void RebuildClusterRoutes();
  void AddSystemRoutes(Router& router);
  Result<Message> Explain(const Message& request) const;
  Message ListRoutes() const;

  struct LiveService {
    std::string type;
    std::string fingerprint;  // type + settings: unchanged means the instance is kept on reload
    ServiceInstance instance;
  };

  NodeConfig config_;  // guarded by mutex_ after start
  const NodeOptions options_;
  std::unique_ptr<IoRuntime> runtime_;  // first: destroyed last
  std::shared_ptr<Metrics> metrics_;
  Bus bus_;
  Bus local_bus_;                                            // the services of this node only
  std::mutex mutex_;                                         // serialises Reload and Stop
  std::map<std::string, LiveService> services_;              // guarded by mutex_
  std::vector<ServiceInstance> retired_;                     // guarded by mutex_
  std::map<std::string, std::shared_ptr<Handler>> clients_;  // guarded by mutex_
  std::vector<std::string> served_;                          // guarded by mutex_
  // The current table's route-loop warnings (route_checks.h); replaced with the table.
  std::atomic<std::shared_ptr<const std::vector<std::string>>> warnings_{
      std::make_shared<const std::vector<std::string>>()};
  std::unique_ptr<ClusterAgent> cluster_;  // null: the node runs alone
  std::unique_ptr<Listener> cluster_listener_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<std::string> urls_;
  std::atomic<bool> stopping_{false};
  bool stopped_ = false;  // guarded by mutex_
};

void Node::Impl::Dispatch(Message message, ReplyFn reply) {
  Meta& meta = message.meta();
  if (meta.id.empty()) meta.id = bus_.NewId();
  if (meta.trace.empty()) meta.trace = meta.id;
  metrics_->RequestStarted();
  auto start = std::chrono::steady_clock::now();
  bus_.Act(std::move(message), [metrics = metrics_, start, trace = meta.trace,
                                reply = std::move(reply)](Result<Message> result) {
    Code code = result.ok() ? Code::kOk : result.status().code();
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - start);
    metrics->RequestFinished(code, micros.count());
    if (!result.ok()) {
      auto level = (code == Code::kInternal || code == Code::kUnavailable || code == Code::kTimeout)
                       ? spdlog::level::info
                       : spdlog::level::debug;
      spdlog::log(level, "[trace {}] {}", trace, result.status().ToString());
    }
    reply(std::move(result));
  });
}

Status Node::Impl::Install(const NodeConfig& next) {
  Router router;
  Router local_router;  // this node's services only (fire-and-forget from other nodes)
  std::map<std::string, LiveService> services;
  std::vector<std::string> created;  // names built in this attempt: stopped if it fails
  std::map<std::string, std::shared_ptr<Handler>> clients;
  std::vector<std::string> served;  // patterns routed to this node's own services
  auto fail = [&](Status status) {
    for (const std::string& name : created) {
      if (services[name].instance.stop) services[name].instance.stop();
    }
    return status;
  };

  for (const ServiceConfig& service : next.services) {
    std::string fingerprint = service.type + '\n' + service.settings.Json();
    auto existing = services_.find(service.name);
    LiveService live;
    if (existing != services_.end() && existing->second.fingerprint == fingerprint) {
      live = existing->second;
    } else {
      auto factory = ServiceRegistry::Global().Find(service.type);
      if (!factory) {
        std::string known;
        for (const std::string& t : ServiceRegistry::Global().Types())
          known += (known.empty() ? "" : ", ") + t;
        return fail(
            Status::Invalid(fmt::format("{}: service '{}': unknown type '{}' (registered: {})",
                                        next.source, service.name, service.type, known)));
      }
      ServiceContext context{service.name, service.settings, *runtime_, options_.environment,
                             &bus_};
      Result<ServiceInstance> instance = Status::Internal("unset");
      try {
        instance = (*factory)(context);
      } catch (const std::exception& e) {
        instance = Status::Internal(
            fmt::format("{}: factory threw: {}", service.settings.where(), e.what()));
      }
      if (!instance.ok()) return fail(instance.status());
      if (!instance->handler)
        return fail(Status::Internal(
            fmt::format("{}: factory built no handler", service.settings.where())));
      live = LiveService{service.type, fingerprint, std::move(instance).value()};
      created.push_back(service.name);
    }
    const std::vector<std::string>& patterns =
        service.patterns.empty() ? live.instance.patterns : service.patterns;
    auto queue = metrics_->Queue(service.name);
    for (const std::string& text : patterns) {
      auto pattern = Pattern::Parse(text);
      if (!pattern.ok())
        return fail(Status::Invalid(fmt::format("{}: service '{}': {}", next.source, service.name,
                                                pattern.status().message())));
      auto gate =
          std::make_shared<GateHandler>(live.instance.handler, service.name, queue,
                                        service.max_in_flight, metrics_->Route(pattern->ToString()),
                                        GateHandler::TrailMark(service.name, pattern->ToString()));
      served.push_back(pattern->ToString());
      (void)local_router.Add(*pattern, gate, "service " + service.name);
      Status added = router.Add(std::move(pattern).value(), gate,
                                fmt::format("service {} ({})", service.name, service.type));
      if (!added.ok())
        return fail(Status::Invalid(
            fmt::format("{}: service '{}': {}", next.source, service.name, added.message())));
    }
    services.emplace(service.name, std::move(live));
  }

  for (size_t i = 0; i < next.routes.size(); ++i) {
    const RouteConfig& route = next.routes[i];
    auto pattern = Pattern::Parse(route.pattern);
    if (!pattern.ok()) return fail(pattern.status());
    std::shared_ptr<Handler> target;
    std::string description;
    if (LooksLikeUrl(route.to)) {
      std::string key =
          fmt::format("{}|{}|{}|{}", route.to, route.timeout_ms, route.token, route.connections);
      auto it = clients_.find(key);
      if (it != clients_.end()) {
        target = it->second;
      } else if (options_.connect) {
        auto connected = options_.connect(route);
        if (!connected.ok())
          return fail(Status::Invalid(
              fmt::format("{}: route[{}].to: {}", next.source, i, connected.status().message())));
        target = *connected;
      } else {
        auto endpoint = ParseEndpoint(route.to);
        if (!endpoint.ok()) return fail(endpoint.status());
        ClientOptions options;
        options.timeout = std::chrono::milliseconds(route.timeout_ms);
        options.token = route.token;
        options.connections = route.connections;
        auto client = MakeClient(*runtime_, *endpoint, options);
        if (!client.ok()) return fail(client.status());
        target = *client;
      }
      clients.emplace(key, target);
      target = std::make_shared<GateHandler>(target, Shown(route.to), nullptr, 0,
                                             metrics_->Route(pattern->ToString()));
      description = fmt::format("-> {} (timeout {} ms)", Shown(route.to), route.timeout_ms);
    } else {
      const ServiceConfig* service = nullptr;
      for (const ServiceConfig& s : next.services) {
        if (s.name == route.to) service = &s;
      }
      if (service == nullptr)
        return fail(Status::Invalid(
            fmt::format("{}: route[{}].to: no service '{}'", next.source, i, route.to)));
      target = std::make_shared<GateHandler>(
          services[route.to].instance.handler, service->name, metrics_->Queue(service->name),
          service->max_in_flight, metrics_->Route(pattern->ToString()),
          GateHandler::TrailMark(service->name, pattern->ToString()));
      description = fmt::format("service {} ({})", service->name, service->type);
      served.push_back(pattern->ToString());
      (void)local_router.Add(*pattern, target, description);
    }
    Status added = router.Add(std::move(pattern).value(), target, description);
    if (!added.ok())
      return fail(Status::Invalid(
          fmt::format("{}: route[{}].pattern: {}", next.source, i, added.message())));
  }

  if (cluster_) {
    AddClusterRoutes(next, router, clients);
    // The cluster's shard maps are routing state too: taken (a newer epoch replaces the config's)
    // before any route, worker or listener acts on a map.
    if (Status attached = cluster_->AttachShardMaps(); !attached.ok()) return fail(attached);
  }
  AddSystemRoutes(router);
  auto warnings = std::make_shared<const std::vector<std::string>>(ForwardingLoopWarnings(router));
  if (*warnings != *warnings_.load()) {
    for (const std::string& warning : *warnings) spdlog::warn("{}: {}", next.source, warning);
  }
  warnings_.store(std::move(warnings));

  // Everything is built and valid: swap. In-flight messages keep the old table.
  bus_.Replace(std::move(router));
  local_bus_.Replace(std::move(local_router));
  // Only now may the new services' workers send: every route and link they need is in place.
  for (const ServiceConfig& service : next.services) {
    if (std::find(created.begin(), created.end(), service.name) == created.end()) continue;
    if (const auto& start = services[service.name].instance.start) start();
  }
  for (auto& [name, live] : services_) {
    auto it = services.find(name);
    if (it == services.end() || it->second.fingerprint != live.fingerprint)
      retired_.push_back(live.instance);
  }
  services_ = std::move(services);
  clients_ = std::move(clients);
  if (served != served_) {
    served_ = std::move(served);
    for (auto& listener : listeners_) listener->ServedPatternsChanged(served_);
    if (cluster_listener_) {
      cluster_listener_->ServedPatternsChanged(served_);
      Status announced = cluster_->Announce(served_);
      if (!announced.ok()) spdlog::warn("{}", announced.ToString());
    }
  }
  return Status::Ok();
}

// One route per pattern that other nodes serve and this node does not: to its NATS subject, so
// shardkit's matching picks the most specific pattern and NATS picks one instance serving it.
void Node::Impl::AddClusterRoutes(const NodeConfig& next, Router& router,
                                  std::map<std::string, std::shared_ptr<Handler>>& clients) {
  auto endpoint = ParseEndpoint(next.cluster.nats);
  for (const auto& [text, nodes] : cluster_->RemotePatterns()) {
    auto pattern = Pattern::Parse(text);
    if (!pattern.ok()) continue;
    std::string key = "cluster|" + pattern->key();
    std::shared_ptr<Handler> client;
    if (auto it = clients_.find(key); it != clients_.end()) {
      client = it->second;
    } else {
      ClientOptions options;
      options.timeout = std::chrono::milliseconds(next.cluster.timeout_ms);
      auto made = MakeNatsClient(*endpoint, options, text, next.cluster.resend_after_ms);
      if (!made.ok()) {
        spdlog::warn("cluster route {}: {}", text, made.status().ToString());
        continue;
      }
      client = *made;
    }
    clients.emplace(key, client);
    auto gate = std::make_shared<GateHandler>(client, "cluster", nullptr, 0,
                                              metrics_->Route(pattern->ToString()));
    std::string description = fmt::format("cluster: {} via {} ({})", fmt::join(nodes, ", "),
                                          Shown(next.cluster.nats), PatternSubject(pattern->key()));
    // A pattern this node serves itself stays local (Add refuses the duplicate).
    (void)router.Add(std::move(pattern).value(), gate, std::move(description));
  }
}

void Node::Impl::RebuildClusterRoutes() {
  if (stopping_.load()) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (stopped_ || stopping_.load()) return;
  Status installed = Install(config_);
  if (!installed.ok()) spdlog::warn("cluster routes not updated: {}", installed.ToString());
}

void Node::Impl::AddSystemRoutes(Router& router) {
  auto add = [&](std::string_view pattern, SyncHandlerFn fn, std::string description) {
    (void)router.Add(std::move(Pattern::Parse(pattern)).value(), MakeSyncHandler(std::move(fn)),
                     std::move(description));
  };
  add(
      "sys:config,cmd:reload",
      [this](Message, const Context&) -> Result<Message> {
        Status status = ReloadFromFile();
        if (!status.ok()) return status;
        return Message()
            .SetBool("reloaded", true)
            .SetUint("routes", bus_.routes()->size())
            .SetArrayJson("warnings", JsonStringArray(*warnings_.load()));
      },
      "node: reload the config file");
  add(
      "sys:config,cmd:explain", [this](Message m, const Context&) { return Explain(m); },
      "node: explain a message's route");
  add(
      "sys:config,cmd:routes",
      [this](Message, const Context&) -> Result<Message> { return ListRoutes(); },
      "node: list the routes");
  add(
      "sys:stats",
      [this](Message, const Context&) -> Result<Message> {
        JsonObject stats;
        metrics_->AddTo(stats);
        NatsLink::ProcessStats nats = NatsLink::InProcess();
        if (cluster_ || nats.links > 0) {  // this process's NATS links (docs/cluster.md)
          stats.Add("nats", JsonObject()
                                .Add("links", nats.links)
                                .Add("resent", nats.resent)
                                .Add("batches", nats.batches)
                                .Add("batched_items", nats.batched));
        }
        if (cluster_) {  // the cluster's NATS connection; requests resent on silence (process)
          stats.Add("cluster", JsonObject()
                                   .AddBool("connected", cluster_->link()->connected())
                                   .Add("resent", nats.resent));
        }
        return ReplyFromJson(stats.str());
      },
      "node: metrics");
}

Result<Message> Node::Impl::Explain(const Message& request) const {
  auto json = request.GetObjectJson("msg");
  if (!json) return Status::Invalid("msg: must be an object (the message to explain)");
  auto message = ParseMessage(*json);
  if (!message.ok()) return Status::Invalid(fmt::format("msg: {}", message.status().message()));
  Explanation explanation = bus_.routes()->Explain(*message);
  std::string candidates = "[";
  for (const auto& candidate : explanation.candidates) {
    if (candidates.size() > 1) candidates += ',';
    candidates += JsonObject()
                      .Add("pattern", candidate.route->pattern.ToString())
                      .Add("to", candidate.route->description)
                      .AddBool("matched", candidate.matched)
                      .Add("reason", candidate.reason)
                      .str();
  }
  candidates += ']';
  Message reply;
  if (explanation.winner) {
    reply.SetString("pattern", explanation.winner->pattern.ToString());
    reply.SetString("to", explanation.winner->description);
  } else {
    reply.SetNull("pattern");
  }
  reply.SetString("summary", explanation.summary);
  reply.SetArrayJson("candidates", candidates);
  reply.SetArrayJson("warnings", JsonStringArray(*warnings_.load()));
  return reply;
}

Message Node::Impl::ListRoutes() const {
  std::string list = "[";
  for (const auto& route : bus_.routes()->List()) {
    if (list.size() > 1) list += ',';
    list +=
        JsonObject().Add("pattern", route->pattern.ToString()).Add("to", route->description).str();
  }
  list += ']';
  return Message().SetString("node", config_.name).SetArrayJson("routes", list);
}

Status Node::Impl::StartListeners() {
  ListenerHooks hooks;
  hooks.dispatch = [this](Message message, ReplyFn reply) {
    Dispatch(std::move(message), std::move(reply));
  };
  hooks.dispatch_local = [this](Message message, ReplyFn reply) {
    local_bus_.Act(std::move(message), std::move(reply));
  };
  hooks.metrics_text = [metrics = metrics_] { return metrics->PrometheusText(); };
  hooks.health_json = [this] {
    return JsonObject()
        .Add("status", stopping_.load() ? "stopping" : "ok")
        .Add("node", config_.name)
        .Add("in_flight", metrics_->in_flight())
        .str();
  };
  for (const ListenerConfig& config : config_.listeners) {
    Result<std::unique_ptr<Listener>> listener = Status::Internal("unset");
    switch (config.endpoint.scheme) {
      case Scheme::kTcp:
        listener = StartTcpListener(*runtime_, config, hooks);
        break;
      case Scheme::kHttp:
        listener = StartHttpListener(*runtime_, config, hooks);
        break;
      case Scheme::kInproc:
        listener = StartInprocListener(*runtime_, config, hooks);
        break;
      case Scheme::kNats:
        listener = StartNatsListener(config, hooks, served_);
        break;
    }
    if (!listener.ok()) return listener.status();
    urls_.push_back((*listener)->url());
    listeners_.push_back(std::move(listener).value());
  }
  if (cluster_) {
    ListenerConfig config;
    config.endpoint = std::move(ParseEndpoint(config_.cluster.nats)).value();
    config.request_timeout_ms = config_.request_timeout_ms;
    auto listener = StartNatsListener(config, hooks, served_);
    if (!listener.ok()) return listener.status();
    cluster_listener_ = std::move(listener).value();
    // Registered only once its subjects are subscribed: whoever routes here finds it.
    if (Status announced = cluster_->Announce(served_); !announced.ok()) return announced;
  }
  return Status::Ok();
}

Status Node::Impl::StartCluster() {
  if (config_.cluster.nats.empty()) return Status::Ok();
  auto agent =
      ClusterAgent::Start(config_.cluster, config_.name, [this] { RebuildClusterRoutes(); });
  if (!agent.ok()) return agent.status();
  cluster_ = std::move(agent).value();
  if (!cluster_->WaitForRegistry(std::chrono::seconds(2)))
    spdlog::warn("cluster: the registry was not read within 2 s; routes to other nodes follow");
  return Status::Ok();
}

Status Node::Impl::ReloadFromFile() {
  std::string source;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    source = config_.source;
  }
  if (source.empty()) return Status::Invalid("the node was not started from a config file");
  auto loaded = LoadNodeConfig(source);
  if (!loaded.ok()) {
    spdlog::warn("reload refused, the old config stays: {}", loaded.status().message());
    return loaded.status();
  }
  return Reload(std::move(loaded).value());
}

Status Node::Impl::Reload(NodeConfig next) {
  if (stopping_.load()) return Status::Unavailable("the node is stopping");
  std::lock_guard<std::mutex> lock(mutex_);
  if (stopped_ || stopping_.load()) return Status::Unavailable("the node is stopping");
  if (!SameListeners(config_.listeners, next.listeners)) {
    return Status::Invalid(fmt::format(
        "{}: listener: listeners cannot change on reload (restart the node)", next.source));
  }
  if (!(config_.cluster == next.cluster)) {
    return Status::Invalid(
        fmt::format("{}: cluster: the cluster settings cannot change on reload (restart the node)",
                    next.source));
  }
  Status installed = Install(next);
  if (!installed.ok()) {
    spdlog::warn("reload refused, the old config stays: {}", installed.message());
    return installed;
  }
  next.threads = config_.threads;
  config_ = std::move(next);
  spdlog::info("node '{}': reloaded, {} routes", config_.name, bus_.routes()->size());
  return Status::Ok();
}

void Node::Impl::Stop(std::chrono::milliseconds grace) {
  if (stopping_.exchange(true)) {
    std::lock_guard<std::mutex> lock(mutex_);  // a concurrent Stop: wait for it to finish
    return;
  }
  // Leave the cluster first: routers stop sending here while what was sent is still answered.
  if (cluster_) cluster_->Leave();
  for (auto& listener : listeners_) listener->StopAccepting();
  if (cluster_listener_) cluster_listener_->StopAccepting();
  auto until = std::chrono::steady_clock::now() + grace;
  while (metrics_->in_flight() > 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (metrics_->in_flight() > 0)
    spdlog::warn("node '{}': stopping with {} requests unanswered", config_.name,
                 metrics_->in_flight());
  for (auto& listener : listeners_) listener->Close();
  if (cluster_listener_) cluster_listener_->Close();
  cluster_listener_.reset();
  cluster_.reset();  // joins its threads; not under mutex_ (a route rebuild may wait for it)
  auto close_until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  auto open = [&] {
    size_t n = 0;
    for (auto& listener : listeners_) n += listener->connections();
    return n;
  };
  while (open() > 0 && std::chrono::steady_clock::now() < close_until)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));

  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopped_ = true;
    listeners_.clear();
    // The start order backwards: workers stop while their routes still stand, then the routes and
    // links go, then the stores close (docs/architecture.md, "Start and stop order").
    std::vector<ServiceInstance> instances = retired_;
    for (const ServiceConfig& service : config_.services) {
      if (auto it = services_.find(service.name); it != services_.end())
        instances.push_back(it->second.instance);
    }
    auto stop_all = [&](bool workers) {
      for (auto it = instances.rbegin(); it != instances.rend(); ++it) {
        if (it->stop && static_cast<bool>(it->start) == workers) it->stop();
      }
    };
    stop_all(true);
    bus_.Replace(Router());
    local_bus_.Replace(Router());
    clients_.clear();
    stop_all(false);
    services_.clear();
    retired_.clear();
  }
  // Not under mutex_: an I/O thread may be waiting for it in Reload.
  runtime_->Stop();
}

// --- Node
// -----------------------------------------------------------------------------------------

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Node::~Node() = default;

Result<std::unique_ptr<Node>> Node::Start(NodeConfig config) {
  return Start(std::move(config), NodeOptions{});
}

// The one place that orders a node's start (docs/architecture.md, "Start and stop order"); Stop
// runs it backwards:
//   1. the cluster connection, and the registry read, so routes to other nodes exist;
//   2. Install: open stores, build the whole routing table and every outgoing link (TCP pools,
//      NATS clients), take the cluster's shard maps, swap the table in; then start the services'
//      workers (appliers, projections, resumed migrations), which may now send;
//   3. listeners accept and subscribe their queue groups; last, the node registers in the
//      cluster, so whoever routes here finds it ready.
Result<std::unique_ptr<Node>> Node::Start(NodeConfig config, NodeOptions options) {
  bool listen = options.listen;
  auto impl = std::make_unique<Impl>(std::move(config), std::move(options));
  if (Status clustered = impl->StartCluster(); !clustered.ok()) return clustered;
  {
    std::lock_guard<std::mutex> lock(impl->mutex_);
    Status installed = impl->Install(impl->config_);
    if (!installed.ok()) return installed;
    Status listening = listen ? impl->StartListeners() : Status::Ok();
    if (!listening.ok()) return listening;
  }
  spdlog::info("node '{}' serving on {}", impl->config_.name, fmt::join(impl->urls_, ", "));
  return std::unique_ptr<Node>(new Node(std::move(impl)));
}

std::vector<std::string> Node::listener_urls() const { return impl_->urls_; }
const std::string& Node::name() const { return impl_->config_.name; }
Status Node::Reload() { return impl_->ReloadFromFile(); }
Status Node::Reload(NodeConfig next) {
  if (next.source.empty()) next.source = "config";
  return impl_->Reload(std::move(next));
}
void Node::Stop(std::chrono::milliseconds grace) { impl_->Stop(grace); }
void Node::Stop() { impl_->Stop(std::chrono::milliseconds(impl_->config_.stop_grace_ms)); }
Bus& Node::bus() { return impl_->bus_; }
IoRuntime& Node::runtime() { return *impl_->runtime_; }
Metrics& Node::metrics() { return *impl_->metrics_; }

}  // namespace shardkit::services
