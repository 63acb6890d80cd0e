// A node's own routes: sys:config (reload, explain, routes) and sys:stats.
#include <fmt/format.h>

#include "node_impl.h"
#include "node_stats.h"
#include "shardkit/message/codec.h"
#include "shardkit/message/json.h"

namespace shardkit::services {
namespace {

Message ReplyFromJson(std::string_view json) {
  auto parsed = ParseMessage(json);
  if (!parsed.ok()) return Message().SetString("error", parsed.status().ToString());
  return std::move(parsed).value();
}

}  // namespace

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
        AddFeedStats(options_.environment.directory_or_process(), stats);
        AddCacheStats(options_.environment.directory_or_process(), stats);
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

}  // namespace shardkit::services
