// The service registry: service type name -> factory. A node config's [[service]] tables name a
// type; the node asks the registry's factory to build it.
//
// Registering a type is one call, made once before nodes start (for example at the top of main):
//
//   shardkit::services::RegisterServiceType("store",
//       [](const shardkit::services::ServiceContext& ctx) -> shardkit::Result<ServiceInstance> {
//         auto path = ctx.settings.GetString("path");
//         if (!path.ok()) return path.status();
//         auto store = OpenStore(*path);                  // may return an error: refused config
//         if (!store.ok()) return store.status();
//         return ServiceInstance{.handler = MakeStoreHandler(std::move(*store)),
//                                .patterns = {"store:*"},
//                                .stop = [s = ...] { s->Flush(); }};
//       });
//
// Factory contract: validate every setting (ctx.settings getters name file, service and key in
// their errors; call CheckOnly to refuse unknown keys); return an error rather than throw; do not
// start serving traffic before the node routes to the handler. Open files and outgoing links in the
// factory, but send no message and start no background worker there: that belongs in `start`
// (optional), which the node calls once its whole routing table and every outgoing link are in
// place, before it accepts on listeners or joins a cluster (docs/architecture.md, "Start and stop
// order"). `patterns` are routed to the handler unless the [[service]] table lists its own
// `patterns`. `stop` (optional) runs once when the node stops, after in-flight requests have
// finished: first for the services that have a `start` (their workers stop while the routes still
// stand), in reverse config order, then for the others (flush and close files there). `drain`
// (optional) runs when the node stops taking requests, before it waits for those in flight:
// answer parked long-polls there (and at once from then on), or the stop waits out its grace.
//
// On reload, a service whose type and settings are unchanged keeps its instance (its data and
// open files); a changed one is built anew.
//
// Built-in types (registered on first use of the registry; docs/services.md):
//   echo  replies with the request's properties plus served_by; settings: delay_ms (int).
//         A request may carry delay_ms (int) to delay its reply, or fail ("<code>") to be answered
//         with that error.
//   kv    an in-memory key/value store: store:save (id, ent), store:load (id), store:remove (id)
//         for any kind; settings: preload (count of ids "0".."n-1"), value_bytes (their size).
//
// Thread-safety: Register and Find are safe from any thread; factories run on the thread that
// starts or reloads a node.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shardkit/message/bus.h"
#include "shardkit/message/clock.h"
#include "shardkit/message/handler.h"
#include "shardkit/message/status.h"
#include "shardkit/services/named_registry.h"
#include "shardkit/services/runtime.h"
#include "shardkit/services/settings.h"

namespace shardkit::services {

// Objects the services of one node share by name, e.g. the shard map "main" that stores and
// routers name, the stores of served shards, a command log that projections read. Keys are
// "<kind>/<name>" ("shard-map/main"); each kind's owner knows the type it stored. A `shardkit
// serve` process is one node and uses Process(); the testing cluster gives each of its in-process
// nodes its own directory.
//
// Thread-safety: every method is safe from any thread.
class ServiceDirectory {
 public:
  // The process's directory (never destroyed).
  static ServiceDirectory& Process();

  // The object under `key`, or null.
  std::shared_ptr<void> Find(const std::string& key) const;
  template <typename T>
  std::shared_ptr<T> Find(const std::string& key) const {
    return std::static_pointer_cast<T>(Find(key));
  }
  // Sets (or replaces) `key`; a null value removes it.
  void Put(const std::string& key, std::shared_ptr<void> value);
  // The keys starting with `prefix`, in insertion order.
  std::vector<std::string> Keys(std::string_view prefix) const;
  // (name, object) of every key starting with `prefix`, the prefix cut off, in insertion order.
  template <typename T>
  std::vector<std::pair<std::string, std::shared_ptr<T>>> FindAll(std::string_view prefix) const {
    std::vector<std::pair<std::string, std::shared_ptr<T>>> found;
    for (const std::string& key : Keys(prefix)) {
      if (auto object = Find<T>(key)) found.emplace_back(key.substr(prefix.size()), object);
    }
    return found;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<std::string, std::shared_ptr<void>>> objects_;  // guarded by mutex_
};

// What a node hands its services besides their settings. The defaults are a `shardkit serve`
// process; the testing cluster injects a manual clock, runs blocking work inline (deterministic)
// and gives each in-process node its own directory.
struct ServiceEnvironment {
  const Clock* clock = nullptr;  // null: the system clock (TTLs, ids, deadlines)
  // Runs blocking work (disk calls); null: services use their own thread pools.
  std::function<void(std::function<void()>)> run_blocking;
  std::shared_ptr<ServiceDirectory> directory;  // null: ServiceDirectory::Process()

  const Clock& clock_or_system() const { return clock ? *clock : SystemClock::Default(); }
  ServiceDirectory& directory_or_process() const {
    return directory ? *directory : ServiceDirectory::Process();
  }
};

// What a factory gets.
struct ServiceContext {
  std::string name;          // the [[service]] name ("orders")
  const Settings& settings;  // its type-specific keys
  IoRuntime& runtime;        // timers and non-blocking work (blocking work needs its own pool)
  const ServiceEnvironment& environment = DefaultEnvironment();
  // The node's bus, for services that send messages (an applier, a change-feed projection); null
  // when the factory runs outside a node (tools, tests).
  Bus* bus = nullptr;
  // The node's [node] max_reply_bytes: a service that builds large replies (a store's lists)
  // stops before one grows past it.
  size_t max_reply_bytes = 16 * 1024 * 1024;

  static const ServiceEnvironment& DefaultEnvironment();
};

// A decorator of another service of the same node (docs/architecture.md, "Composing a
// decorator"): the node installs the decorator's handler as an override of every route of
// `service`, so the handler reaches that service with Context::Prior, with no second trip
// through the bus.
struct Decorates {
  std::string service;             // the decorated service's name; empty: not a decorator
  std::string setting;             // the setting that named it, for errors ("decorates")
  std::vector<std::string> types;  // the service types it can decorate
};

// What a factory builds.
struct ServiceInstance {
  std::shared_ptr<Handler> handler;
  std::vector<std::string> patterns;  // default patterns, in pattern.h notation
  std::function<void()> stop;         // optional, see above
  std::function<void()> start;        // optional: starts background workers, see above
  // Decorators of this service's own routes, innermost first: the node routes each pattern to
  // `handler`, then installs each of these as an override of it; each reaches the one below with
  // Context::Prior (a store serving a shard puts its shard guard here).
  std::vector<std::shared_ptr<Handler>> overrides;
  // Set when this service decorates another one; its `patterns` are routed as well.
  Decorates decorates;
  std::function<void()> drain;  // optional: ends long-polls as the node stops, see above
  // The messages among those it serves that are operations, in pattern.h notation: only admin
  // tokens may send them, and external listeners serve them only when their allow list names
  // them (docs/security.md). The rest are data. sys:* messages are always operations.
  std::vector<std::string> operations;
};

using ServiceFactory = std::function<Result<ServiceInstance>(const ServiceContext&)>;

class ServiceRegistry : public NamedRegistry<ServiceFactory> {
 public:
  ServiceRegistry() : NamedRegistry("service type") {}
  // The process-wide registry, with the built-in types.
  static ServiceRegistry& Global();
  // The registered type names, built-in ones first.
  std::vector<std::string> Types() const { return Names(); }
};

// ServiceRegistry::Global().Register(type, factory).
Status RegisterServiceType(std::string type, ServiceFactory factory);

}  // namespace shardkit::services
