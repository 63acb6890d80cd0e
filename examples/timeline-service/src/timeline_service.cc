// The timeline service: validation, then messages to the entry store.
#include <timeline/timeline_service.h>

#include <string>

#include <shardkit/message/json.h>

namespace timeline {
namespace {

using shardkit::Context;
using shardkit::Message;
using shardkit::ReplyFn;
using shardkit::Result;
using shardkit::Status;

class TimelineService final : public shardkit::Handler {
 public:
  explicit TimelineService(TimelineOptions options) : options_(options) {}

  void Handle(Message message, const Context& context, ReplyFn reply) override {
    auto op = message.GetString("timeline");
    auto user = message.GetString("user");
    if (!user || user->empty())
      return reply(Status::Invalid("user: required", R"({"field":"user"})"));
    if (op == "post") return Post(std::string(*user), message, context, std::move(reply));
    if (op == "list") return List(std::string(*user), message, context, std::move(reply));
    reply(Status::Invalid("timeline: expected post or list", R"({"field":"timeline"})"));
  }

 private:
  void Post(std::string user, const Message& message, const Context& context, ReplyFn reply) {
    auto text = message.GetString("text");
    if (!text || text->empty())
      return reply(Status::Invalid("text: required", R"({"field":"text"})"));
    if (text->size() > options_.max_text_bytes) {
      return reply(
          Status::Invalid("text: longer than " + std::to_string(options_.max_text_bytes) + " bytes",
                          R"({"field":"text"})"));
    }
    std::string ent = "{\"user\":";
    shardkit::AppendJsonString(user, ent);
    ent += ",\"text\":";
    shardkit::AppendJsonString(*text, ent);
    ent += ",\"at\":" + std::to_string(options_.clock->NowMs()) + "}";
    Message save;
    save.SetString("store", "save").SetString("kind", "entry").SetObjectJson("ent", ent);
    context.Act(std::move(save), [context, user, reply = std::move(reply)](Result<Message> saved) {
      if (!saved.ok()) return reply(std::move(saved).status());
      auto doc = shardkit::ParseJson(saved->GetObjectJson("ent").value_or("{}"), "ent");
      if (!doc.ok() || !doc->IsObject() || !doc->HasMember("id") || !(*doc)["id"].IsString()) {
        return reply(Status::Internal("store:save answered without ent.id"));
      }
      std::string id = (*doc)["id"].GetString();
      Message info;
      info.SetString("info", "entry").SetString("user", user).SetString("id", id);
      context.Publish(std::move(info));
      Message answer;
      answer.SetString("id", id);
      reply(std::move(answer));
    });
  }

  void List(std::string user, const Message& message, const Context& context, ReplyFn reply) {
    int64_t limit = message.GetInt("limit").value_or(options_.default_limit);
    if (limit < 0)
      return reply(Status::Invalid("limit: must not be negative", R"({"field":"limit"})"));
    std::string q = "{\"user\":";
    shardkit::AppendJsonString(user, q);
    q += ",\"sort$\":{\"at\":-1},\"limit$\":" + std::to_string(limit) + "}";
    Message list;
    list.SetString("store", "list").SetString("kind", "entry").SetObjectJson("q", q);
    context.Act(std::move(list), [reply = std::move(reply)](Result<Message> page) {
      if (!page.ok()) return reply(std::move(page).status());
      Message answer;
      answer.SetArrayJson("items", page->GetArrayJson("items").value_or("[]"));
      reply(std::move(answer));
    });
  }

  TimelineOptions options_;
};

}  // namespace

std::shared_ptr<shardkit::Handler> MakeTimelineService(TimelineOptions options) {
  return std::make_shared<TimelineService>(options);
}

}  // namespace timeline
