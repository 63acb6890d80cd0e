// The CQRS service types of a node config (docs/cqrs.md, "In a node config"):
//   command-log  the write side: a CommandLog, its CommandService and (by default) an Applier that
//                applies the logged commands through the node's bus; also answers
//                cqrs:deadletter,cmd:*,service:<name> and cqrs:status,service:<name>
//   projection   a projection type (projection_types.h) over a command-log of this node or a
//                store's change feed (by message), served from its own RocksDB read model with
//                read-your-writes
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>

#include "shardkit/cqrs/applier.h"
#include "shardkit/cqrs/command_log.h"
#include "shardkit/cqrs/command_service.h"
#include "shardkit/cqrs/projection_service.h"
#include "shardkit/message/codec.h"
#include "shardkit/services/projection_types.h"
#include "shardkit/services/registry.h"
#include "shardkit/store/id_generator.h"

namespace shardkit::services {
namespace {

template <typename T>
Status St(const Result<T>& r) {
  return r.ok() ? Status::Ok() : r.status();
}

std::string LogKey(const std::string& name) { return "command-log/" + name; }

Result<store::Durability> DurabilityOf(const Settings& s) {
  auto text = s.GetString("durability", "group");
  if (!text.ok()) return text.status();
  if (*text == "sync") return store::Durability::kSync;
  if (*text == "group") return store::Durability::kGroup;
  if (*text == "none") return store::Durability::kNone;
  return s.Error("durability", "must be sync, group or none");
}

Status NeedPath(const Settings& s, const Result<std::string>& path) {
  if (!path.ok()) return path.status();
  if (path->empty()) return s.Error("path", "is required (the directory of its RocksDB)");
  if (std::error_code ec; !std::filesystem::create_directories(*path, ec) && ec)
    return s.Error("path", fmt::format("cannot create {}: {}", *path, ec.message()));
  return Status::Ok();
}

// Sends messages carrying `cqrs:<role>` to `admin` and everything else to `main`.
std::shared_ptr<Handler> WithAdmin(
    std::shared_ptr<Handler> main,
    std::vector<std::pair<std::string, std::shared_ptr<Handler>>> admin) {
  return MakeHandler([main = std::move(main), admin = std::move(admin)](
                         Message m, const Context& context, ReplyFn reply) {
    if (auto role = m.GetString("cqrs")) {
      for (const auto& [name, handler] : admin) {
        if (*role == name) return handler->Handle(std::move(m), context, std::move(reply));
      }
    }
    main->Handle(std::move(m), context, std::move(reply));
  });
}

// command-log: a command log, its command service and its applier.
Result<ServiceInstance> MakeCommandLogService(const ServiceContext& ctx) {
  const Settings& s = ctx.settings;
  if (Status st = s.CheckOnly({"path", "durability", "node_id", "key_field", "apply",
                               "max_attempts", "initial_backoff_ms", "max_backoff_ms",
                               "reply_timeout_ms", "max_in_flight"});
      !st.ok())
    return st;
  auto path = s.GetString("path", "");
  auto durability = DurabilityOf(s);
  auto node_id = s.GetInt("node_id", 0);
  auto key_field = s.GetString("key_field", "id");
  auto apply = s.GetBool("apply", true);
  auto attempts = s.GetInt("max_attempts", 5);
  auto backoff = s.GetInt("initial_backoff_ms", 10);
  auto max_backoff = s.GetInt("max_backoff_ms", 2'000);
  auto reply_timeout = s.GetInt("reply_timeout_ms", 10'000);
  auto in_flight = s.GetInt("max_in_flight", 256);
  for (const Status& st : {St(durability), St(node_id), St(key_field), St(apply), St(attempts),
                           St(backoff), St(max_backoff), St(reply_timeout), St(in_flight)}) {
    if (!st.ok()) return st;
  }
  if (Status st = NeedPath(s, path); !st.ok()) return st;
  if (*node_id < 0 || *node_id > store::IdGenerator::kMaxNodeId)
    return s.Error("node_id", "must be 0..1023");
  if (*attempts < 1) return s.Error("max_attempts", "must be at least 1");
  if (*backoff < 1 || *max_backoff < *backoff)
    return s.Error("initial_backoff_ms", "must be at least 1 and at most max_backoff_ms");
  if (*reply_timeout < 1) return s.Error("reply_timeout_ms", "must be positive");
  if (*in_flight < 1) return s.Error("max_in_flight", "must be positive");
  if (*apply && ctx.bus == nullptr) return s.Error("apply", "needs a node's bus to apply through");

  cqrs::CommandLogOptions log_options;
  log_options.path = *path;
  log_options.durability = *durability;
  auto opened = cqrs::CommandLog::Open(log_options);
  if (!opened.ok()) return s.Error("path", opened.status().message());
  std::shared_ptr<cqrs::CommandLog> log = std::move(opened).value();

  cqrs::CommandServiceOptions command_options;
  command_options.node_id = static_cast<uint32_t>(*node_id);
  command_options.key_field = *key_field;
  command_options.clock = &ctx.environment.clock_or_system();
  auto commands = cqrs::MakeCommandService(log, command_options);

  std::shared_ptr<cqrs::Applier> applier;
  std::vector<std::pair<std::string, std::shared_ptr<Handler>>> admin;
  if (*apply) {
    cqrs::ApplierOptions applier_options;
    applier_options.name = ctx.name;
    applier_options.max_attempts = static_cast<uint32_t>(*attempts);
    applier_options.initial_backoff_ms = *backoff;
    applier_options.max_backoff_ms = *max_backoff;
    applier_options.reply_timeout_ms = *reply_timeout;
    applier_options.max_in_flight = static_cast<size_t>(*in_flight);
    auto opened_applier = cqrs::Applier::Open(log, *ctx.bus, applier_options);
    if (!opened_applier.ok()) return s.Error("path", opened_applier.status().message());
    applier = std::move(opened_applier).value();
    admin.emplace_back("deadletter", cqrs::MakeDeadLetterService(log, applier));
    admin.emplace_back("status", cqrs::MakeStatusService({applier}));
  }
  ctx.environment.directory_or_process().Put(LogKey(ctx.name), log);
  std::vector<std::string> patterns;
  if (applier) {
    patterns = {fmt::format("cqrs:deadletter,cmd:*,service:\"{}\"", ctx.name),
                fmt::format("cqrs:status,service:\"{}\"", ctx.name)};
  }
  auto stop = [applier, log]() mutable {
    if (applier) applier->Stop();
  };
  std::function<void()> start;
  if (applier) start = [applier] { applier->Begin(); };
  ServiceInstance instance{WithAdmin(commands, std::move(admin)), std::move(patterns), stop, start};
  instance.operations = {"cqrs:deadletter", "cqrs:status"};
  return instance;
}

// The projection the `projection` setting names (projection_types.h), once the table holds only the
// service's keys and the type's.
Result<ProjectionInstance> RegisteredProjection(const Settings& s) {
  auto which = s.GetString("projection");
  if (!which.ok()) return which.status();
  auto type = ProjectionRegistry::Global().Find(*which);
  if (!type) {
    return s.Error("projection",
                   fmt::format("unknown projection '{}' (registered: {})", *which,
                               fmt::join(ProjectionRegistry::Global().Names(), ", ")));
  }
  std::vector<std::string_view> known = {
      "projection",       "path",       "durability",         "log",           "feed",
      "poll_interval_ms", "batch_size", "default_timeout_ms", "max_timeout_ms"};
  known.insert(known.end(), type->settings.begin(), type->settings.end());
  if (Status st = s.CheckOnly(known); !st.ok()) return st;
  Result<ProjectionInstance> built = Status::Internal("unset");
  try {
    built = type->factory(s);
  } catch (const std::exception& e) {
    return s.Error("projection", fmt::format("the factory of '{}' threw: {}", *which, e.what()));
  }
  if (built.ok() && !built->projection)
    return s.Error("projection", fmt::format("the factory of '{}' built no projection", *which));
  return built;
}

// projection: a registered projection type over a command log (`log`) or a change feed (`feed`).
Result<ServiceInstance> MakeProjectionService(const ServiceContext& ctx) {
  const Settings& s = ctx.settings;
  // First: an unknown type or key is refused before anything is created on disk.
  auto projection = RegisteredProjection(s);
  if (!projection.ok()) return projection.status();
  auto path = s.GetString("path", "");
  auto durability = DurabilityOf(s);
  auto log_name = s.GetString("log", "");
  auto poll = s.GetInt("poll_interval_ms", 5);
  auto batch = s.GetInt("batch_size", 1024);
  auto default_timeout = s.GetInt("default_timeout_ms", 5'000);
  auto max_timeout = s.GetInt("max_timeout_ms", 60'000);
  for (const Status& st :
       {St(durability), St(log_name), St(poll), St(batch), St(default_timeout), St(max_timeout)}) {
    if (!st.ok()) return st;
  }
  if (*poll < 1) return s.Error("poll_interval_ms", "must be positive");
  if (*batch < 1) return s.Error("batch_size", "must be positive");
  if (*default_timeout < 0 || *max_timeout < *default_timeout)
    return s.Error("default_timeout_ms", "must be 0..max_timeout_ms");

  std::unique_ptr<cqrs::EventSource> source;
  bool has_feed = s.Has("feed");
  if (log_name->empty() == !has_feed)
    return s.Error("log",
                   "give exactly one source: log = \"<command-log service>\" or feed = "
                   "{ store = \"changes\", … }");
  if (!log_name->empty()) {
    auto log = ctx.environment.directory_or_process().Find<cqrs::CommandLog>(LogKey(*log_name));
    if (!log)
      return s.Error("log", fmt::format("no command-log service '{}' in this node (it must come "
                                        "before this one)",
                                        *log_name));
    source = cqrs::MakeCommandLogSource(std::move(log));
  } else {
    if (ctx.bus == nullptr)
      return s.Error("feed", "needs a node's bus to read the feed by message");
    auto table = ParseMessage(s.Json());
    std::optional<std::string_view> feed = table.ok() ? table->GetObjectJson("feed") : std::nullopt;
    auto request = feed ? ParseMessage(*feed) : Result<Message>(Status::Invalid("not a table"));
    if (!request.ok() || request->GetString("store") != std::optional<std::string_view>("changes"))
      return s.Error("feed",
                     "must be a table of the request's properties, with store = \"changes\"");
    source = cqrs::MakeChangeFeedSource(*ctx.bus, std::move(request).value(), *poll);
  }
  if (Status st = NeedPath(s, path); !st.ok()) return st;

  cqrs::ProjectionOptions options;
  options.path = *path;
  options.durability = *durability;
  options.batch_size = static_cast<size_t>(*batch);
  options.default_timeout_ms = *default_timeout;
  options.max_timeout_ms = *max_timeout;
  auto patterns = std::move(projection->patterns);
  auto opened =
      cqrs::ProjectionService::Open(std::move(projection->projection), std::move(source), options);
  if (!opened.ok()) return s.Error("path", opened.status().message());
  std::shared_ptr<cqrs::ProjectionService> service = std::move(opened).value();
  patterns.push_back(fmt::format("cqrs:status,service:\"{}\"", ctx.name));
  auto handler = WithAdmin(service, {{"status", cqrs::MakeStatusService({service})}});
  ServiceInstance instance{handler, std::move(patterns), [service] { service->Stop(); },
                           [service] { service->Begin(); }};
  instance.operations = {"cqrs:status"};
  return instance;
}

}  // namespace

void RegisterCqrsServices(ServiceRegistry& registry) {
  (void)registry.Register("command-log", MakeCommandLogService);
  (void)registry.Register("projection", MakeProjectionService);
}

}  // namespace shardkit::services
