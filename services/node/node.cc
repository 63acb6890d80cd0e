#include "shardkit/services/node.h"

#include <algorithm>
#include <map>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "audit.h"
#include "node_stats.h"

#include "node_impl.h"
#include "shardkit/message/json.h"
#include "shardkit/services/client.h"
#include "shardkit/services/registry.h"

namespace shardkit::services {
namespace {

bool SameListeners(const std::vector<ListenerConfig>& a, const std::vector<ListenerConfig>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!(a[i].endpoint == b[i].endpoint) || a[i].external != b[i].external ||
        a[i].token != b[i].token || a[i].console != b[i].console || a[i].tokens != b[i].tokens ||
        a[i].allow != b[i].allow || a[i].insecure != b[i].insecure ||
        a[i].max_message_bytes != b[i].max_message_bytes ||
        a[i].read_timeout_ms != b[i].read_timeout_ms ||
        a[i].max_connections != b[i].max_connections ||
        a[i].max_connections_per_peer != b[i].max_connections_per_peer ||
        a[i].idle_timeout_ms != b[i].idle_timeout_ms ||
        a[i].write_timeout_ms != b[i].write_timeout_ms ||
        a[i].max_in_flight_per_connection != b[i].max_in_flight_per_connection ||
        a[i].tls_cert_file != b[i].tls_cert_file || a[i].tls_key_file != b[i].tls_key_file ||
        a[i].tls_client_ca_file != b[i].tls_client_ca_file) {
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

Node::Impl::Impl(NodeConfig config, NodeOptions options)
    : config_(std::move(config)),
      options_(std::move(options)),
      runtime_(std::make_unique<IoRuntime>(config_.threads)),
      metrics_(std::make_shared<Metrics>()),
      bus_(BusOptionsFor(options_)) {}

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

Status Node::Impl::StartListeners() {
  ListenerHooks hooks;
  hooks.dispatch = [this](Message message, ReplyFn reply) {
    Dispatch(std::move(message), std::move(reply));
  };
  hooks.dispatch_local = [this](Message message, ReplyFn reply) {
    local_bus_.Act(std::move(message), std::move(reply));
  };
  hooks.metrics_text = [this, metrics = metrics_] {
    const ServiceDirectory& directory = options_.environment.directory_or_process();
    return metrics->PrometheusText() + counters_->PrometheusText() + FeedMetricsText(directory) +
           StoreHealthMetricsText(directory) + CacheMetricsText(directory);
  };
  hooks.health_json = [this] {
    // "degraded": a store cannot write (a full or read-only disk) but the node serves the rest.
    bool writable = true;
    std::string stores = StoreHealthJson(options_.environment.directory_or_process(), writable);
    JsonObject health;
    health.Add("status", stopping_.load() ? "stopping"
                         : writable       ? "ok"
                                          : "degraded")
        .Add("node", config_.name)
        .Add("in_flight", metrics_->in_flight());
    if (!stores.empty()) health.AddRaw("stores", stores);
    return health.str();
  };
  hooks.counters = counters_;
  auto audit = AuditLog::Open(config_.audit_log, config_.name);
  if (!audit.ok()) return audit.status();
  hooks.audit = [audit = *audit](const AuditRecord& record) { audit->Write(record); };
  hooks.is_operation = [this](const Message& message) {
    const std::vector<Pattern>* operations = operations_.load(std::memory_order_acquire);
    if (operations == nullptr) return false;
    for (const Pattern& pattern : *operations) {
      if (pattern.Matches(message)) return true;
    }
    return false;
  };
  StartConsole(hooks);
  for (const ListenerConfig& config : config_.listeners) {
    if (config.insecure && !RequiresToken(config))
      spdlog::warn("{}: insecure = true: this listener asks no token of anyone who reaches it",
                   config.endpoint.ToString());
    if (config.insecure && config.external && !config.endpoint.tls)
      spdlog::warn("{}: insecure = true: this external listener speaks plain text, without TLS",
                   config.endpoint.ToString());
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
    config.endpoint = std::move(ClusterEndpoint(config_.cluster)).value();
    config.request_timeout_ms = config_.request_timeout_ms;
    config.max_reply_bytes = config_.max_reply_bytes;
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
  if (!SameListeners(config_.listeners, next.listeners) || config_.audit_log != next.audit_log) {
    return Status::Invalid(fmt::format(
        "{}: listener: listeners cannot change on reload (restart the node)", next.source));
  }
  if (config_.max_reply_bytes != next.max_reply_bytes) {
    return Status::Invalid(fmt::format(
        "{}: node.max_reply_bytes: cannot change on reload (restart the node)", next.source));
  }
  if (!(config_.cluster == next.cluster)) {
    return Status::Invalid(
        fmt::format("{}: cluster: the cluster settings cannot change on reload (restart the node)",
                    next.source));
  }
  // The certificate files are read again (renewed certificates); new connections use them.
  for (auto& listener : listeners_) {
    Status reloaded = listener->ReloadCertificates();
    if (!reloaded.ok()) {
      spdlog::warn("reload refused, the old config stays: {}", reloaded.message());
      return Status::Invalid(fmt::format("{}: listener: {}", next.source, reloaded.message()));
    }
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

void Node::Impl::DrainServices() {
  std::vector<std::function<void()>> drains;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [name, live] : services_) {
      if (live.instance.drain) drains.push_back(live.instance.drain);
    }
  }
  for (const auto& drain : drains) drain();
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
  DrainServices();
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
    std::vector<ServiceInstance> instances;
    for (const Retired& r : retired_) instances.push_back(r.instance);
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
