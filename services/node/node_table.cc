// Building a node's routing table (Install): its services, its config routes, the cluster's
// routes and its own sys:* routes, checked whole, then swapped in.
#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "gate_handler.h"
#include "node_impl.h"
#include "route_checks.h"
#include "shardkit/services/client.h"

namespace shardkit::services {

void Node::Impl::Table::StopCreated() {
  for (const std::string& name : created) {
    if (services[name].instance.stop) services[name].instance.stop();
  }
}

Status Node::Impl::Install(const NodeConfig& next) {
  Table table;
  Status built = AddServices(next, table);
  if (built.ok()) built = AddRoutes(next, table);
  if (built.ok() && cluster_) {
    AddClusterRoutes(next, table.router, table.clients);
    // The cluster's shard maps are routing state too: taken (a newer epoch replaces the config's)
    // before any route, worker or listener acts on a map.
    built = cluster_->AttachShardMaps();
  }
  if (!built.ok()) {
    table.StopCreated();
    return built;
  }
  AddSystemRoutes(table.router);
  auto warnings =
      std::make_shared<const std::vector<std::string>>(ForwardingLoopWarnings(table.router));
  if (*warnings != *warnings_.load()) {
    for (const std::string& warning : *warnings) spdlog::warn("{}: {}", next.source, warning);
  }
  warnings_.store(std::move(warnings));
  Commit(next, std::move(table));
  return Status::Ok();
}

// The instance of `service`: the live one when its type and settings are unchanged, else a new
// one (listed in table.created).
Result<Node::Impl::LiveService> Node::Impl::BuildService(const NodeConfig& next,
                                                         const ServiceConfig& service,
                                                         Table& table) {
  std::string fingerprint = service.type + '\n' + service.settings.Json();
  auto existing = services_.find(service.name);
  if (existing != services_.end() && existing->second.fingerprint == fingerprint)
    return existing->second;
  auto factory = ServiceRegistry::Global().Find(service.type);
  if (!factory) {
    std::string known;
    for (const std::string& t : ServiceRegistry::Global().Types())
      known += (known.empty() ? "" : ", ") + t;
    return Status::Invalid(fmt::format("{}: service '{}': unknown type '{}' (registered: {})",
                                       next.source, service.name, service.type, known));
  }
  ServiceContext context{service.name, service.settings,    *runtime_, options_.environment,
                         &bus_,        next.max_reply_bytes};
  Result<ServiceInstance> instance = Status::Internal("unset");
  try {
    instance = (*factory)(context);
  } catch (const std::exception& e) {
    instance =
        Status::Internal(fmt::format("{}: factory threw: {}", service.settings.where(), e.what()));
  }
  if (!instance.ok()) return instance.status();
  if (!instance->handler)
    return Status::Internal(fmt::format("{}: factory built no handler", service.settings.where()));
  for (const std::string& text : instance->operations) {
    if (auto pattern = Pattern::Parse(text); !pattern.ok()) {
      if (instance->stop) instance->stop();
      return Status::Internal(fmt::format("{}: the type's operations: '{}': {}",
                                          service.settings.where(), text,
                                          pattern.status().message()));
    }
  }
  table.created.push_back(service.name);
  return LiveService{service.type, fingerprint, std::move(instance).value()};
}

namespace {

const ServiceConfig* FindService(const NodeConfig& config, const std::string& name) {
  for (const ServiceConfig& s : config.services) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

}  // namespace

// Each decorator names a service of this node, of a type it can decorate, that no other
// decorator decorates.
Status Node::Impl::CheckDecorators(const NodeConfig& next, Table& table) {
  for (const ServiceConfig& service : next.services) {
    const Decorates& d = table.services[service.name].instance.decorates;
    if (d.service.empty()) continue;
    const ServiceConfig* target = FindService(next, d.service);
    if (target == nullptr || target == &service)
      return service.settings.Error(d.setting,
                                    fmt::format("no {}service '{}' in this node to decorate",
                                                target == &service ? "other " : "", d.service));
    if (std::find(d.types.begin(), d.types.end(), target->type) == d.types.end())
      return service.settings.Error(
          d.setting,
          fmt::format("service '{}' is a {}, which a {} cannot decorate (it decorates: {})",
                      d.service, target->type, service.type, fmt::join(d.types, ", ")));
    auto [it, fresh] = table.decorator_of.emplace(d.service, service.name);
    if (!fresh)
      return service.settings.Error(
          d.setting,
          fmt::format("service '{}' is already decorated by '{}'", d.service, it->second));
  }
  return Status::Ok();
}

Status Node::Impl::AddStack(const NodeConfig& next, Table& table, const std::string& name,
                            const Pattern& pattern) {
  const ServiceConfig& service = *FindService(next, name);
  const ServiceInstance& instance = table.services[name].instance;
  std::string text = pattern.ToString();
  auto decorator = table.decorator_of.find(name);
  std::string description = fmt::format("service {} ({})", name, service.type);
  // Each service passes one gate (admission, metrics, loop trail) over its layers. The outermost
  // gate counts the route's messages under the pattern; an inner one counts what reaches it
  // apart, as "<pattern> (<service>)", so the pattern counts each message once.
  auto gated = [&](std::shared_ptr<Handler> handler, const ServiceConfig& owner,
                   bool outermost) -> std::shared_ptr<Handler> {
    std::string key = outermost ? text : fmt::format("{} ({})", text, owner.name);
    return std::make_shared<GateHandler>(
        std::move(handler), owner.name, metrics_->Queue(owner.name), owner.max_in_flight,
        metrics_->Route(key), GateHandler::TrailMark(owner.name, text));
  };
  // Bottom-up: the service, a decorator of it (a cache), then the service's own overrides (its
  // shard guard), so the guard refuses a message for a range this shard no longer owns before a
  // cache could answer it from an entry of the old owner.
  struct Layer {
    std::shared_ptr<Handler> handler;
    std::string description;
  };
  std::vector<Layer> layers = {{instance.handler, description}};
  const bool decorated = decorator != table.decorator_of.end();
  const bool own_on_top = !instance.overrides.empty();
  if (decorated) {
    const ServiceConfig& outer = *FindService(next, decorator->second);
    if (!own_on_top) layers.back().handler = gated(layers.back().handler, service, false);
    layers.push_back({gated(table.services[outer.name].instance.handler, outer, !own_on_top),
                      fmt::format("service {} over {}", outer.name, name)});
  }
  for (const auto& o : instance.overrides) layers.push_back({o, description});
  if (!decorated || own_on_top) layers.back().handler = gated(layers.back().handler, service, true);
  bool local = table.local_router.Add(pattern, layers.front().handler, description).ok();
  if (Status added = table.router.Add(pattern, layers.front().handler, description); !added.ok())
    return added;
  for (size_t i = 1; i < layers.size(); ++i) {
    (void)table.router.Override(pattern, layers[i].handler, layers[i].description);
    if (local) (void)table.local_router.Override(pattern, layers[i].handler, layers[i].description);
  }
  table.served.push_back(text);
  return Status::Ok();
}

Status Node::Impl::AddServices(const NodeConfig& next, Table& table) {
  for (const ServiceConfig& service : next.services) {
    auto live = BuildService(next, service, table);
    if (!live.ok()) return live.status();
    table.services.emplace(service.name, std::move(live).value());
  }
  if (Status checked = CheckDecorators(next, table); !checked.ok()) return checked;
  for (const ServiceConfig& service : next.services) {
    const ServiceInstance& instance = table.services[service.name].instance;
    const std::vector<std::string>& patterns =
        service.patterns.empty() ? instance.patterns : service.patterns;
    for (const std::string& text : patterns) {
      auto pattern = Pattern::Parse(text);
      if (!pattern.ok())
        return Status::Invalid(fmt::format("{}: service '{}': {}", next.source, service.name,
                                           pattern.status().message()));
      if (Status added = AddStack(next, table, service.name, *pattern); !added.ok())
        return Status::Invalid(
            fmt::format("{}: service '{}': {}", next.source, service.name, added.message()));
    }
  }
  return Status::Ok();
}

// The client of route `i` (to a URL): reused while its settings are unchanged.
Result<std::shared_ptr<Handler>> Node::Impl::RouteClient(const NodeConfig& next, size_t i,
                                                         const std::string& key) {
  const RouteConfig& route = next.routes[i];
  if (auto it = clients_.find(key); it != clients_.end()) return it->second;
  if (options_.connect) {
    auto connected = options_.connect(route);
    if (!connected.ok())
      return Status::Invalid(
          fmt::format("{}: route[{}].to: {}", next.source, i, connected.status().message()));
    return *connected;
  }
  auto endpoint = ParseEndpoint(route.to);
  if (!endpoint.ok()) return endpoint.status();
  ClientOptions options;
  options.timeout = std::chrono::milliseconds(route.timeout_ms);
  options.token = route.token;
  options.connections = route.connections;
  options.tls_ca_file = route.tls_ca_file;
  options.tls_cert_file = route.tls_cert_file;
  options.tls_key_file = route.tls_key_file;
  auto client = MakeClient(*runtime_, *endpoint, options);
  if (!client.ok())
    return Status::Invalid(
        fmt::format("{}: route[{}]: {}", next.source, i, client.status().message()));
  return client;
}

Status Node::Impl::AddRoutes(const NodeConfig& next, Table& table) {
  for (size_t i = 0; i < next.routes.size(); ++i) {
    const RouteConfig& route = next.routes[i];
    auto pattern = Pattern::Parse(route.pattern);
    if (!pattern.ok()) return pattern.status();
    Status added = Status::Ok();
    if (!LooksLikeUrl(route.to)) {
      if (FindService(next, route.to) == nullptr)
        return Status::Invalid(
            fmt::format("{}: route[{}].to: no service '{}'", next.source, i, route.to));
      added = AddStack(next, table, route.to, *pattern);
    } else {
      std::string key = fmt::format("{}|{}|{}|{}|{}|{}|{}", route.to, route.timeout_ms, route.token,
                                    route.connections, route.tls_ca_file, route.tls_cert_file,
                                    route.tls_key_file);
      auto client = RouteClient(next, i, key);
      if (!client.ok()) return client.status();
      table.clients.emplace(key, *client);
      auto target = std::make_shared<GateHandler>(*client, Shown(route.to), nullptr, 0,
                                                  metrics_->Route(pattern->ToString()));
      added =
          table.router.Add(std::move(pattern).value(), target,
                           fmt::format("-> {} (timeout {} ms)", Shown(route.to), route.timeout_ms));
    }
    if (!added.ok())
      return Status::Invalid(
          fmt::format("{}: route[{}].pattern: {}", next.source, i, added.message()));
  }
  return Status::Ok();
}

// A retired store stays open until here, so its files and memory do not pile up over many
// reloads (a split's sources, for one). Workers are left to the node's stop: a worker's stop
// order (before the routes go) only holds there.
void Node::Impl::StopRetired(std::chrono::steady_clock::time_point before) {
  auto done = std::stable_partition(retired_.begin(), retired_.end(), [&](const Retired& r) {
    return r.at >= before || r.instance.start;
  });
  for (auto it = done; it != retired_.end(); ++it) {
    if (it->instance.stop) it->instance.stop();
  }
  retired_.erase(done, retired_.end());
}

// Everything is built and valid: swap. In-flight messages keep the old table.
void Node::Impl::Commit(const NodeConfig& next, Table table) {
  bus_.Replace(std::move(table.router));
  local_bus_.Replace(std::move(table.local_router));
  // Only now may the new services' workers send: every route and link they need is in place.
  for (const ServiceConfig& service : next.services) {
    if (std::find(table.created.begin(), table.created.end(), service.name) == table.created.end())
      continue;
    if (const auto& start = table.services[service.name].instance.start) start();
  }
  const auto now = std::chrono::steady_clock::now();
  StopRetired(now - std::chrono::milliseconds(config_.stop_grace_ms));
  for (auto& [name, live] : services_) {
    auto it = table.services.find(name);
    if (it == table.services.end() || it->second.fingerprint != live.fingerprint)
      retired_.push_back({live.instance, now});
  }
  services_ = std::move(table.services);
  auto operations = std::make_unique<std::vector<Pattern>>();
  for (const auto& [name, live] : services_) {
    for (const std::string& text : live.instance.operations)
      operations->push_back(std::move(Pattern::Parse(text)).value());  // checked when built
  }
  operations_.store(operations.get());
  operation_lists_.push_back(std::move(operations));
  clients_ = std::move(table.clients);
  if (table.served != served_) {
    served_ = std::move(table.served);
    for (auto& listener : listeners_) listener->ServedPatternsChanged(served_);
    if (cluster_listener_) {
      cluster_listener_->ServedPatternsChanged(served_);
      Status announced = cluster_->Announce(served_);
      if (!announced.ok()) spdlog::warn("{}", announced.ToString());
    }
  }
}

void Node::Impl::AddClusterRoutes(const NodeConfig& next, Router& router,
                                  std::map<std::string, std::shared_ptr<Handler>>& clients) {
  auto endpoint = ClusterEndpoint(next.cluster);
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

}  // namespace shardkit::services
