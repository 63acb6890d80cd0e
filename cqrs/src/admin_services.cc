// The small admin handlers: cqrs:deadletter (list, replay) and cqrs:status.
#include <fmt/format.h>
#include <shardkit/message/json.h>

#include "shardkit/cqrs/applier.h"
#include "shardkit/cqrs/status.h"

namespace shardkit::cqrs {
namespace {

// An optional non-negative integer property.
Result<std::optional<uint64_t>> OptionalUint(const Message& m, std::string_view name) {
  const Value* v = m.Find(name);
  if (v == nullptr) return std::optional<uint64_t>();
  auto n = m.GetUint(name);
  if (!n || v->type != ValueType::kNumber)
    return Status::InvalidField(name, "must be a non-negative integer");
  return std::optional<uint64_t>(*n);
}

class DeadLetterService final : public Handler {
 public:
  DeadLetterService(std::shared_ptr<CommandLog> log, std::shared_ptr<Applier> applier)
      : log_(std::move(log)), applier_(std::move(applier)) {}

  void Handle(Message m, const Context&, ReplyFn reply) override {
    auto cmd = m.GetString("cmd");
    if (cmd && *cmd == "list") {
      reply(List(m));
    } else if (cmd && *cmd == "replay") {
      auto position = OptionalUint(m, "position");
      if (!position.ok()) return reply(std::move(position).status());
      applier_->Replay(
          *position, [reply = std::move(reply)](Result<std::vector<Replayed>> replayed) {
            if (!replayed.ok()) return reply(std::move(replayed).status());
            std::string items = "[";
            for (const Replayed& r : *replayed) {
              if (items.size() > 1) items += ',';
              items += fmt::format(R"({{"from":{},"position":{}}})", r.from, r.position);
            }
            items += ']';
            Message out;
            out.SetArrayJson("replayed", items);
            reply(std::move(out));
          });
    } else {
      reply(Status::InvalidField("cmd", "must be list or replay"));
    }
  }

 private:
  Result<Message> List(const Message& m) {
    auto from = OptionalUint(m, "from");
    if (!from.ok()) return std::move(from).status();
    auto limit = OptionalUint(m, "limit");
    if (!limit.ok()) return std::move(limit).status();
    if (limit->has_value() && **limit == 0)
      return Status::InvalidField("limit", "must be positive");
    auto letters = log_->ListDeadLetters(from->value_or(1), limit->value_or(1000));
    if (!letters.ok()) return std::move(letters).status();
    std::string items = "[";
    for (const DeadLetter& l : *letters) {
      if (items.size() > 1) items += ',';
      std::string key = l.command.key;
      std::replace(key.begin(), key.end(), '\0', '/');
      items += fmt::format(R"({{"position":{},"command_id":)", l.command.position);
      AppendJsonString(l.command.command_id, items);
      items += R"(,"key":)";
      AppendJsonString(key, items);
      items += fmt::format(R"(,"attempts":{},"error":)", l.attempts);
      AppendJsonString(l.error, items);
      items += R"(,"command":)";
      items += l.command.json;
      items += '}';
    }
    items += ']';
    Message out;
    out.SetArrayJson("items", items);
    return out;
  }

  std::shared_ptr<CommandLog> log_;
  std::shared_ptr<Applier> applier_;
};

class StatusService final : public Handler {
 public:
  explicit StatusService(std::vector<std::shared_ptr<const LagSource>> sources)
      : sources_(std::move(sources)) {}

  void Handle(Message m, const Context&, ReplyFn reply) override {
    auto name = m.GetString("name");
    if (m.Has("name") && !name) return reply(Status::InvalidField("name", "must be a string"));
    std::string items = "[";
    for (const auto& source : sources_) {
      LagInfo info = source->Lag();
      if (name && info.name != *name) continue;
      if (items.size() > 1) items += ',';
      items += R"({"name":)";
      AppendJsonString(info.name, items);
      items += R"(,"role":)";
      AppendJsonString(info.role, items);
      items += fmt::format(R"(,"applied":{},"head":{},"lag":{},"errors":{},"dead_letters":{}}})",
                           info.applied, info.head, info.lag(), info.errors, info.dead_letters);
    }
    items += ']';
    if (name && items == "[]")
      return reply(Status::NotFound(fmt::format("name: no component '{}'", *name)));
    Message out;
    out.SetArrayJson("items", items);
    reply(std::move(out));
  }

 private:
  std::vector<std::shared_ptr<const LagSource>> sources_;
};

}  // namespace

std::shared_ptr<Handler> MakeDeadLetterService(std::shared_ptr<CommandLog> log,
                                               std::shared_ptr<Applier> applier) {
  return std::make_shared<DeadLetterService>(std::move(log), std::move(applier));
}

std::shared_ptr<Handler> MakeStatusService(std::vector<std::shared_ptr<const LagSource>> sources) {
  return std::make_shared<StatusService>(std::move(sources));
}

}  // namespace shardkit::cqrs
