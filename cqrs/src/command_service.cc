// CommandService: validates a command, gives a save its id, logs it, acknowledges with its
// position.
#include "shardkit/cqrs/command_service.h"

#include <fmt/format.h>
#include <rapidjson/writer.h>
#include <shardkit/message/codec.h>
#include <shardkit/message/json.h>
#include <shardkit/store/id_generator.h>

namespace shardkit::cqrs {
namespace {

constexpr size_t kMaxCommandIdBytes = 256;

bool IsUnsignedInteger(std::string_view text) {
  return !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
}

// `ent` with "id" set to `id` as its first member.
std::string WithId(const rapidjson::Document& ent, std::string_view id) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  writer.Key("id");
  writer.String(id.data(), static_cast<rapidjson::SizeType>(id.size()));
  for (const auto& member : ent.GetObject()) {
    if (std::string_view(member.name.GetString(), member.name.GetStringLength()) == "id") continue;
    member.name.Accept(writer);
    member.value.Accept(writer);
  }
  writer.EndObject();
  return WrittenJson(buffer);
}

std::string EntityKey(std::string_view kind, std::string_view id) {
  std::string key(kind);
  key.push_back('\0');
  key.append(id);
  return key;
}

Result<CommandPlan> PlanStoreCommand(Message message, std::string_view op, CommandPlan plan,
                                     const std::function<std::string()>& new_id) {
  auto kind = message.GetString("kind");
  if (!kind || kind->empty()) return Status::InvalidField("kind", "must be a non-empty string");
  std::string top_id;
  if (const Value* id = message.Find("id")) {
    if (id->type == ValueType::kString && !id->text.empty()) {
      top_id = id->text;
    } else if (id->type == ValueType::kNumber && IsUnsignedInteger(id->text)) {
      top_id = id->text;
    } else {
      return Status::InvalidField("id", "must be a non-empty string or a non-negative integer");
    }
  }
  if (op == "remove") {
    if (message.Has("q") || message.Has("all"))
      return Status::InvalidField("q", "removal by query is not a command; remove by id");
    if (top_id.empty())
      return Status::InvalidField("id", "is required (a command removes one entity)");
    plan.entity_id = top_id;
  } else if (op == "save") {
    if (message.Has("ents"))
      return Status::InvalidField("ents",
                                  "bulk saves are not commands; send one command per entity");
    const Value* ent = message.Find("ent");
    if (ent == nullptr) return Status::InvalidField("ent", "is required (an object)");
    if (ent->type != ValueType::kObject) return Status::InvalidField("ent", "must be an object");
    auto doc = ParseJson(ent->text, "ent");
    if (!doc.ok()) return doc.status();
    std::string ent_id;
    if (auto it = doc->FindMember("id"); it != doc->MemberEnd()) {
      if (!it->value.IsString() || it->value.GetStringLength() == 0)
        return Status::InvalidField("ent.id", "must be a non-empty string");
      ent_id.assign(it->value.GetString(), it->value.GetStringLength());
    }
    if (!top_id.empty() && !ent_id.empty() && top_id != ent_id) {
      return Status::InvalidField("id",
                                  fmt::format("'{}' differs from ent.id '{}'", top_id, ent_id));
    }
    plan.entity_id = !top_id.empty() ? top_id : ent_id;
    if (plan.entity_id.empty()) plan.entity_id = new_id();
    if (ent_id.empty()) message.SetObjectJson("ent", WithId(*doc, plan.entity_id));
  } else {
    return Status::InvalidField("store",
                                fmt::format("'{}' is not a command (save and remove are)", op));
  }
  plan.key = EntityKey(*kind, plan.entity_id);
  message.meta() = Meta{};
  plan.json = ToJson(message);
  return plan;
}

class CommandService final : public Handler {
 public:
  CommandService(std::shared_ptr<CommandLog> log, CommandServiceOptions options)
      : log_(std::move(log)),
        options_(std::move(options)),
        ids_(options_.node_id, options_.clock) {}

  bool CarriesAppliedMark(const Message& message) const {
    for (const auto& [name, value] : options_.applied_mark) {
      if (message.GetString(name) != std::optional<std::string_view>(value)) return false;
    }
    return true;
  }

  void Handle(Message message, const Context&, ReplyFn reply) override {
    if (!options_.applied_mark.empty() && CarriesAppliedMark(message)) {
      reply(Status::NoRoute(fmt::format(
          "'{}' is a command being applied: nothing routes it to its target (not logged again)",
          message.RoutingString())));
      return;
    }
    auto plan =
        PlanCommand(std::move(message), options_.key_field, [this] { return ids_.NextId(); });
    if (!plan.ok()) {
      reply(std::move(plan).status());
      return;
    }
    const bool is_entity = !plan->entity_id.empty();
    std::string entity_id = plan->entity_id;
    log_->Append(std::move(plan->command_id), std::move(plan->key), std::move(plan->json),
                 [log = log_.get(), is_entity, entity_id = std::move(entity_id),
                  reply = std::move(reply)](Result<AppendResult> appended) mutable {
                   if (!appended.ok()) {
                     reply(std::move(appended).status());
                     return;
                   }
                   Message ack;
                   ack.SetString("command_id", appended->command_id);
                   ack.SetUint("position", appended->position);
                   if (is_entity) {
                     // A duplicate's id is the one logged first (a save without an id got a new
                     // one just now, which was not logged).
                     if (appended->duplicate)
                       entity_id = LoggedEntityId(*log, appended->position, entity_id);
                     ack.SetString("id", entity_id);
                   }
                   if (appended->duplicate) ack.SetBool("duplicate", true);
                   reply(std::move(ack));
                 });
  }

 private:
  static std::string LoggedEntityId(const CommandLog& log, uint64_t position,
                                    std::string fallback) {
    auto read = log.Read(position, 1);
    if (!read.ok() || read->empty() || read->front().position != position) return fallback;
    const std::string& key = read->front().key;
    size_t nul = key.find('\0');
    return nul == std::string::npos ? fallback : key.substr(nul + 1);
  }

  std::shared_ptr<CommandLog> log_;
  const CommandServiceOptions options_;
  store::IdGenerator ids_;
};

}  // namespace

Result<CommandPlan> PlanCommand(Message message, const std::string& key_field,
                                const std::function<std::string()>& new_id) {
  CommandPlan plan;
  if (const Value* id = message.Find("command_id")) {
    if (id->type != ValueType::kString || id->text.empty() ||
        id->text.size() > kMaxCommandIdBytes || id->text[0] == '@') {
      return Status::InvalidField(
          "command_id", "must be a non-empty string of at most 256 bytes not starting with '@'");
    }
    plan.command_id = id->text;
  }
  if (const Value* store = message.Find("store")) {
    if (store->type != ValueType::kString)
      return Status::InvalidField("store", "must be a string (save or remove)");
    std::string op(store->text);
    return PlanStoreCommand(std::move(message), op, std::move(plan), new_id);
  }
  if (const Value* key = message.Find(key_field)) {
    if (key->type == ValueType::kString || key->type == ValueType::kNumber) plan.key = key->text;
  }
  message.meta() = Meta{};
  plan.json = ToJson(message);
  return plan;
}

std::shared_ptr<Handler> MakeCommandService(std::shared_ptr<CommandLog> log,
                                            CommandServiceOptions options) {
  return std::make_shared<CommandService>(std::move(log), std::move(options));
}

}  // namespace shardkit::cqrs
