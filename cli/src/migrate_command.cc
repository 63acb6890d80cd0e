#include "migrate_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "shardkit/message/codec.h"
#include "shardkit/message/json.h"
#include "shardkit/services/client.h"
#include "shardkit/services/endpoint.h"

#include "commands.h"

namespace shardkit::cli {
namespace {

struct MigrateOptions {
  std::string to;
  std::string id;
  std::vector<std::string> sources;
  std::vector<std::string> targets;
  std::vector<std::string> nodes;  // shard=url (a source or a target)
  uint64_t max_rows_per_s = 0;
  bool cutover = false;
  bool complete = false;
  int64_t timeout_ms = 60'000;
};

constexpr const char* kMaxRowsHelp = "The copy's ceiling in rows per second (0: none)";

std::string JsonArray(const std::vector<std::string>& names) {
  std::string out = "[";
  for (size_t i = 0; i < names.size(); ++i) {
    out += i ? "," : "";
    AppendJsonString(names[i], out);
  }
  return out + "]";
}

class Session {
 public:
  explicit Session(const MigrateOptions& options) : options_(options), runtime_(1) {}

  Status Connect() {
    auto endpoint = services::ParseEndpoint(options_.to);
    if (!endpoint.ok()) return endpoint.status();
    services::ClientOptions client_options;
    client_options.timeout = std::chrono::milliseconds(options_.timeout_ms);
    client_options.connections = 1;
    auto client = services::MakeClient(runtime_, *endpoint, client_options);
    if (!client.ok()) return client.status();
    client_ = std::move(client).value();
    return Status::Ok();
  }

  Result<Message> Call(std::string_view op, Message extra = {}) {
    extra.SetString("migrate", op).SetString("id", options_.id);
    return services::CallAndWait(*client_, std::move(extra));
  }

 private:
  const MigrateOptions& options_;
  services::IoRuntime runtime_;
  std::shared_ptr<Handler> client_;
};

int Fail(const Status& s) {
  fmt::print(stderr, "{}: {}\n", ProgramName(), s.ToString());
  return s.code() == Code::kUnavailable ? 2 : 1;
}

void PrintProgress(const Message& status, bool tty) {
  uint64_t rows = status.GetUint("rows_copied").value_or(0);
  uint64_t total = status.GetUint("rows_to_copy").value_or(0);
  double rate = status.GetDouble("copy_rows_per_s").value_or(0);
  std::string bar;
  std::string eta = "   -";
  if (total > 0) {
    double done = std::min(1.0, static_cast<double>(rows) / static_cast<double>(total));
    int filled = static_cast<int>(done * 20);
    bar = fmt::format("[{}{}] {:>3.0f}% ", std::string(filled, '#'), std::string(20 - filled, '.'),
                      done * 100);
    if (rate > 0 && rows < total) eta = fmt::format("{:>3.0f}s", (total - rows) / rate);
    if (rows >= total) eta = "  0s";
  }
  std::string line =
      fmt::format("{:<12} {}rows {:>9}/{:<9} rate {:>8.0f}/s  eta {}  lag {:>6}  epoch {}",
                  status.GetString("phase").value_or("?"), bar, rows, total, rate, eta,
                  status.GetUint("lag").value_or(0), status.GetUint("epoch").value_or(0));
  if (tty) {
    fmt::print("\r{}", line);
  } else {
    fmt::print("{}\n", line);
  }
  std::fflush(stdout);
}

// The --node options as the `nodes` object of migrate:start: {"<shard>":"<url>",…}.
Result<std::string> NodesJson(const std::vector<std::string>& nodes) {
  JsonObject out;
  for (const auto& n : nodes) {
    size_t eq = n.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == n.size())
      return Status::Invalid(fmt::format("--node: '{}' must be <shard>=<node url>", n));
    out.Add(n.substr(0, eq), n.substr(eq + 1));
  }
  return out.str();
}

// start, then follow the copy and catch-up; optionally cut over and complete.
int Run(const MigrateOptions& options) {
  auto nodes = NodesJson(options.nodes);
  if (!nodes.ok()) return Fail(nodes.status());
  Session session(options);
  if (Status s = session.Connect(); !s.ok()) return Fail(s);
  Message start;
  start.SetArrayJson("sources", JsonArray(options.sources));
  start.SetArrayJson("targets", JsonArray(options.targets));
  if (!options.nodes.empty()) start.SetObjectJson("nodes", *nodes);
  if (options.max_rows_per_s > 0) start.SetUint("max_rows_per_s", options.max_rows_per_s);
  auto started = session.Call("start", std::move(start));
  if (!started.ok()) return Fail(started.status());
  bool tty = isatty(fileno(stdout));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options.timeout_ms);
  while (true) {
    auto status = session.Call("status");
    if (!status.ok()) return Fail(status.status());
    PrintProgress(*status, tty);
    if (!status->GetBool("copying").value_or(false) && status->GetUint("lag").value_or(0) <= 100)
      break;
    if (std::chrono::steady_clock::now() > deadline) {
      if (tty) fmt::print("\n");
      return Fail(
          Status::Timeout("the copy and catch-up did not finish within --timeout-ms; `shardkit "
                          "migrate status` follows it"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (tty) fmt::print("\n");
  // The same command run again after a crash goes on from the journal's phase.
  auto phase = session.Call("status");
  if (!phase.ok()) return Fail(phase.status());
  std::string_view now = phase->GetString("phase").value_or("");
  if (now == "completed") {
    fmt::print("completed (already)\n");
    return 0;
  }
  if (now == "cancelled") {
    return Fail(Status::Invalid(
        fmt::format("migration '{}' is cancelled; start another one with a new id", options.id)));
  }
  if (options.cutover) {
    auto cut = session.Call("cutover");
    if (!cut.ok()) return Fail(cut.status());
    fmt::print("cutover: epoch {}, write pause {:.1f} ms\n", cut->GetUint("epoch").value_or(0),
               cut->GetDouble("pause_ms").value_or(0));
  }
  if (options.complete) {
    auto done = session.Call("complete");
    if (!done.ok()) return Fail(done.status());
    fmt::print("completed\n");
  }
  return 0;
}

int Single(const MigrateOptions& options, std::string_view op) {
  Session session(options);
  if (Status s = session.Connect(); !s.ok()) return Fail(s);
  auto reply = session.Call(op);
  if (!reply.ok()) return Fail(reply.status());
  reply->meta() = Meta{};
  fmt::print("{}\n", ToJson(*reply));
  return 0;
}

void AddCommonOptions(CLI::App* sub, MigrateOptions& options) {
  sub->add_option("--to", options.to, kToHelp)->required();
  sub->add_option("--id", options.id, "The migration's id")->required();
  sub->add_option("--timeout-ms", options.timeout_ms, "How long to wait")
      ->check(Positive())
      ->capture_default_str();
}

void AddMoveCommand(CLI::App* migrate, const std::shared_ptr<MigrateOptions>& options,
                    int& exit_code) {
  // move: a whole range to a store on another node (the way to add a machine); a replace whose
  // target is remote, named once with its node.
  auto* move = migrate->add_subcommand("move", "A shard's range onto a store of another node");
  AddCommonOptions(move, *options);
  move->add_option("--source", options->sources, "The shard to move")->required()->expected(1);
  move->add_option("--target", options->targets, "The store taking it there, e.g. 40-80@b")
      ->required()
      ->expected(1);
  auto node_url = std::make_shared<std::string>();
  move->add_option(
          "--node", *node_url,
          "The node serving the target, e.g. tcp://10.0.0.2:7000 (or a cluster's nats://host:4222)")
      ->required();
  auto source_url = std::make_shared<std::string>();
  move->add_option("--source-node", *source_url,
                   "The node serving the source, when not the migrator's (--to) node");
  move->add_flag("--cutover", options->cutover, "Cut over once caught up");
  move->add_flag("--complete", options->complete, "Then complete (no rollback after that)");
  move->add_option("--max-rows-per-s", options->max_rows_per_s, kMaxRowsHelp);
  move->callback([options, node_url, source_url, &exit_code] {
    options->nodes = {options->targets.at(0) + "=" + *node_url};
    if (!source_url->empty()) options->nodes.push_back(options->sources.at(0) + "=" + *source_url);
    exit_code = Run(*options);
  });
}

}  // namespace

void AddMigrateCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<MigrateOptions>();
  auto* migrate = app.add_subcommand(
      "migrate", "Split, merge, replace or move shards live (a node's migrator service)");
  migrate->require_subcommand(1);
  auto common = [&](CLI::App* sub) { AddCommonOptions(sub, *options); };
  struct Kind {
    const char* name;
    const char* help;
    const char* sources_help;
    const char* targets_help;
  };
  auto copy_options = [&](CLI::App* sub) {
    sub->add_option("--node", options->nodes,
                    "A source or target on another node: <shard>=<node url> (repeat for more)");
    sub->add_option("--max-rows-per-s", options->max_rows_per_s, kMaxRowsHelp);
    sub->add_flag("--cutover", options->cutover, "Cut over once caught up");
    sub->add_flag("--complete", options->complete, "Then complete (no rollback after that)");
  };
  for (const Kind& kind :
       {Kind{"split", "One shard into several", "The shard to split", "Its parts, e.g. -40,40-80"},
        Kind{"merge", "Adjacent shards into one", "The shards to merge", "The merged shard"},
        Kind{"replace", "A shard onto another store", "The shard to replace",
             "Its replacement, e.g. 80-@sqlite"}}) {
    auto* sub = migrate->add_subcommand(kind.name, kind.help);
    common(sub);
    sub->add_option("--sources,--source", options->sources, kind.sources_help)
        ->required()
        ->delimiter(',');
    sub->add_option("--targets,--target", options->targets, kind.targets_help)
        ->required()
        ->delimiter(',');
    copy_options(sub);
    sub->callback([options, &exit_code] { exit_code = Run(*options); });
  }
  AddMoveCommand(migrate, options, exit_code);
  struct Op {
    const char* name;
    const char* help;
  };
  for (const Op& op : {
           Op{"status", "Print the migration's phase and progress"},
           Op{"verify",
              "Wait until the targets caught up, then compare them with the sources key by key"},
           Op{"cutover", "Route the range to the targets (writes are held briefly, not failed)"},
           Op{"rollback", "After a cutover, route the range back to the sources, losing nothing"},
           Op{"complete", "Stop replicating: the cutover is final (source data is left in place)"},
           Op{"cancel", "Stop a migration that has not cut over; nothing is deleted"},
           Op{"cleanup", "After complete: delete the sources' copies of the moved range"},
       }) {
    auto* sub = migrate->add_subcommand(op.name, op.help);
    common(sub);
    sub->callback([options, &exit_code, op] { exit_code = Single(*options, op.name); });
  }
}

}  // namespace shardkit::cli
