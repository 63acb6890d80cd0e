// The like counter: read, modify, write with a version precondition, retry on conflict.
#include <likes/likes_service.h>

#include <string>

#include <shardkit/message/json.h>
#include <shardkit/services/registry.h>

namespace likes {
namespace {

using shardkit::Message;
using shardkit::Result;
using shardkit::Status;

Message Answer(const std::string& post, int64_t count) {
  Message answer;
  answer.SetString("post", post).SetInt("likes", count);
  return answer;
}

// The count and version of a loaded entity ({"ent":{"id","version","count"}}).
struct Counter {
  int64_t count = 0;
  int64_t version = 0;  // 0: no entity yet (a save with version 0 is insert-only)
};

Result<Counter> CounterOf(const Message& loaded) {
  auto doc = shardkit::ParseJson(loaded.GetObjectJson("ent").value_or("{}"), "ent");
  if (!doc.ok()) return doc.status();
  Counter c;
  if (doc->HasMember("count") && (*doc)["count"].IsInt64()) c.count = (*doc)["count"].GetInt64();
  if (doc->HasMember("version") && (*doc)["version"].IsInt64())
    c.version = (*doc)["version"].GetInt64();
  return c;
}

class LikesService final : public shardkit::Handler {
 public:
  explicit LikesService(LikesOptions options) : options_(std::move(options)) {}

  void Handle(Message message, const shardkit::Context& context, shardkit::ReplyFn reply) override {
    auto post = message.GetString("post");
    if (!post || post->empty()) return reply(Status::InvalidField("post", "required"));
    auto op = message.GetString("likes");
    if (op == "get") return Load(std::string(*post), context, std::move(reply), -1);
    if (op == "add") return Load(std::string(*post), context, std::move(reply), 0);
    reply(Status::InvalidField("likes", "expected add or get"));
  }

 private:
  // Loads the counter; `attempt` < 0 answers it, otherwise saves it + 1.
  void Load(std::string post, const shardkit::Context& context, shardkit::ReplyFn reply,
            int attempt) {
    Message load;
    load.SetString("store", "load").SetString("kind", options_.kind).SetString("id", post);
    context.Act(std::move(load), [this, post, context, reply = std::move(reply),
                                  attempt](Result<Message> loaded) mutable {
      Counter counter;
      if (loaded.ok()) {
        auto parsed = CounterOf(*loaded);
        if (!parsed.ok()) return reply(parsed.status());
        counter = *parsed;
      } else if (loaded.status().code() != shardkit::Code::kNotFound) {
        return reply(std::move(loaded).status());
      }
      if (attempt < 0) return reply(Answer(post, counter.count));
      Save(std::move(post), counter, context, std::move(reply), attempt);
    });
  }

  void Save(std::string post, Counter counter, const shardkit::Context& context,
            shardkit::ReplyFn reply, int attempt) {
    Message save;
    save.SetString("store", "save")
        .SetString("kind", options_.kind)
        .SetObjectJson("ent",
                       shardkit::JsonObject().Add("id", post).Add("count", counter.count + 1).str())
        .SetInt("version", counter.version);
    context.Act(std::move(save), [this, post, counter, context, reply = std::move(reply),
                                  attempt](Result<Message> saved) mutable {
      if (saved.ok()) return reply(Answer(post, counter.count + 1));
      if (saved.status().code() != shardkit::Code::kConflict)
        return reply(std::move(saved).status());
      if (attempt >= options_.max_retries) {
        return reply(Status::Conflict("likes: gave up after " + std::to_string(attempt + 1) +
                                      " conflicting saves of post " + post));
      }
      Load(std::move(post), context, std::move(reply), attempt + 1);  // someone else won: again
    });
  }

  const LikesOptions options_;
};

// The factory a node calls for each [[service]] of type "likes": settings checked, nothing started.
Result<shardkit::services::ServiceInstance> MakeFromConfig(
    const shardkit::services::ServiceContext& ctx) {
  const auto& s = ctx.settings;
  if (Status st = s.CheckOnly({"kind", "max_retries"}); !st.ok()) return st;
  auto kind = s.GetString("kind", "likes");
  if (!kind.ok()) return kind.status();
  auto retries = s.GetInt("max_retries", 5);
  if (!retries.ok()) return retries.status();
  if (*retries < 0 || *retries > 100) return s.Error("max_retries", "must be 0..100");
  return shardkit::services::ServiceInstance{
      .handler = MakeLikesService({*kind, static_cast<int>(*retries)}),
      .patterns = {"likes:*"},
  };
}

}  // namespace

std::shared_ptr<shardkit::Handler> MakeLikesService(LikesOptions options) {
  return std::make_shared<LikesService>(std::move(options));
}

Status RegisterLikesServiceType() {
  return shardkit::services::RegisterServiceType("likes", MakeFromConfig);
}

}  // namespace likes
