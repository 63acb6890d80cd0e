// The microblog services (services.h): each validates its message, then sends messages.
#include "microblog/services.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <shardkit/message/json.h>

namespace microblog {
namespace {

using shardkit::Code;
using shardkit::Context;
using shardkit::Message;
using shardkit::ReplyFn;
using shardkit::Result;
using shardkit::Status;

// A required, non-empty string property.
Result<std::string> RequiredString(const Message& m, std::string_view field) {
  auto value = m.GetString(field);
  if (!value || value->empty()) return Status::InvalidField(field, "required (a non-empty string)");
  return std::string(*value);
}

Result<int> PageSize(const Message& m, const Limits& limits) {
  if (!m.Has("limit")) return limits.default_page;
  auto limit = m.GetInt("limit");
  if (!limit || *limit < 1 || *limit > limits.max_page)
    return Status::InvalidField("limit", fmt::format("must be an integer 1..{}", limits.max_page));
  return static_cast<int>(*limit);
}

std::string Quote(std::string_view text) {
  std::string out;
  shardkit::AppendJsonString(text, out);
  return out;
}

// The `ent` of an info:entry or timeline:insert: an object with string id, user and text.
struct Entry {
  std::string id, user, text;
  int64_t at = 0;
  std::string json;  // as received
};

Result<Entry> EntryOf(const Message& m) {
  auto text = m.GetObjectJson("ent");
  if (!text) return Status::InvalidField("ent", "must be an object (the entry)");
  auto doc = shardkit::ParseJson(*text, "ent");
  if (!doc.ok()) return Status::InvalidField("ent", doc.status().message());
  Entry entry;
  entry.json = std::string(*text);
  for (const char* field : {"id", "user", "text"}) {
    auto it = doc->FindMember(field);
    if (it == doc->MemberEnd() || !it->value.IsString() || it->value.GetStringLength() == 0)
      return Status::InvalidField(fmt::format("ent.{}", field), "required (a non-empty string)");
  }
  entry.id = (*doc)["id"].GetString();
  entry.user = (*doc)["user"].GetString();
  entry.text = (*doc)["text"].GetString();
  if (auto it = doc->FindMember("at"); it != doc->MemberEnd() && it->value.IsInt64())
    entry.at = it->value.GetInt64();
  return entry;
}

// An error of a message this service sent, answered with the service and the message named.
Status Upstream(std::string_view service, std::string_view sent, const Status& status) {
  return Status(status.code(), fmt::format("{}: {} failed: {}", service, sent, status.message()));
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// --- post ----------------------------------------------------------------------------------------

class PostService final : public shardkit::Handler {
 public:
  explicit PostService(Limits limits) : limits_(limits) {}

  void Handle(Message m, const Context& ctx, ReplyFn reply) override {
    if (m.GetString("post") != std::optional<std::string_view>("entry"))
      return reply(Status::InvalidField("post", "must be entry"));
    auto user = RequiredString(m, "user");
    if (!user.ok()) return reply(user.status());
    auto text = RequiredString(m, "text");
    if (!text.ok()) return reply(text.status());
    if (text->size() > limits_.max_text_bytes)
      return reply(Status::InvalidField(
          "text", fmt::format("longer than {} bytes", limits_.max_text_bytes)));
    Message save;
    save.SetString("store", "save").SetString("kind", "entry");
    save.SetObjectJson("ent", fmt::format(R"({{"user":{},"text":{},"at":{}}})", Quote(*user),
                                          Quote(*text), NowMs()));
    ctx.Act(std::move(save), [ctx, reply = std::move(reply)](Result<Message> saved) {
      if (!saved.ok()) return reply(Upstream("post", "store:save,kind:entry", saved.status()));
      std::string ent(saved->GetObjectJson("ent").value_or("{}"));
      Message info;
      info.SetString("info", "entry").SetObjectJson("ent", ent);
      // Whoever listens to info:entry (index, fanout) is routing, not post's business. The post
      // is answered once they have it, so an acknowledged entry is searchable and fanned out.
      ctx.Act(std::move(info), [ent, reply](Result<Message> announced) {
        Message answer;
        answer.SetObjectJson("ent", ent);
        if (announced.ok()) {
          answer.SetUint("announced", announced->GetUint("delivered").value_or(1));
        } else if (announced.status().code() == Code::kNoRoute) {
          answer.SetUint("announced", 0);  // no route for info:entry: nobody listens yet
        } else {
          return reply(
              Status(announced.status().code(),
                     fmt::format("post: the entry was saved ({}) but info:entry failed: {}", ent,
                                 announced.status().message())));
        }
        reply(std::move(answer));
      });
    });
  }

 private:
  Limits limits_;
};

// --- index ---------------------------------------------------------------------------------------

std::vector<std::string> Words(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  for (char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!word.empty()) {
      words.push_back(std::move(word));
      word.clear();
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  std::sort(words.begin(), words.end());
  words.erase(std::unique(words.begin(), words.end()), words.end());
  return words;
}

// An in-memory inverted index: word -> entry ids. It is rebuilt from info:entry, so it holds what
// was posted while it ran (docs/microblog.md, "Limits").
class IndexService final : public shardkit::Handler {
 public:
  explicit IndexService(Limits limits) : limits_(limits) {}

  void Handle(Message m, const Context& ctx, ReplyFn reply) override {
    if (m.Has("info")) return FromInfo(m, ctx, std::move(reply));
    auto op = m.GetString("search").value_or("");
    if (op == "insert") return reply(Insert(m));
    if (op == "query") return reply(Query(m));
    reply(Status::InvalidField("search", "must be insert or query"));
  }

 private:
  struct Doc {
    std::string user, text;
    int64_t at;
  };

  // The book's iteration 1: index turns info:entry into search:insert, routed like any message.
  void FromInfo(const Message& m, const Context& ctx, ReplyFn reply) {
    auto entry = EntryOf(m);
    if (!entry.ok()) return reply(entry.status());
    Message insert;
    insert.SetString("search", "insert").SetString("id", entry->id);
    insert.SetString("user", entry->user).SetString("text", entry->text).SetInt("at", entry->at);
    ctx.Act(std::move(insert), [reply = std::move(reply)](Result<Message> r) {
      reply(r.ok() ? std::move(r) : Upstream("index", "search:insert", r.status()));
    });
  }

  Result<Message> Insert(const Message& m) {
    auto id = RequiredString(m, "id");
    if (!id.ok()) return id.status();
    auto user = RequiredString(m, "user");
    if (!user.ok()) return user.status();
    auto text = m.GetString("text");
    if (!text) return Status::InvalidField("text", "required (a string)");
    auto words = Words(*text);
    std::lock_guard<std::mutex> lock(mu_);
    if (auto old = docs_.find(*id); old != docs_.end()) {
      for (const auto& w : Words(old->second.text)) postings_[w].erase(*id);
    }
    docs_[*id] = Doc{*user, std::string(*text), m.GetInt("at").value_or(0)};
    for (const auto& w : words) postings_[w].insert(*id);
    return Message().SetString("id", *id).SetUint("terms", words.size());
  }

  Result<Message> Query(const Message& m) {
    auto query = RequiredString(m, "query");
    if (!query.ok()) return query.status();
    auto limit = PageSize(m, limits_);
    if (!limit.ok()) return limit.status();
    auto words = Words(*query);
    if (words.empty()) return Status::InvalidField("query", "has no words (letters or digits)");
    std::vector<std::pair<int64_t, std::string>> hits;  // (at, id)
    std::string items = "[";
    size_t count = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const std::set<std::string>* rarest = nullptr;
      static const std::set<std::string> kNone;
      for (const auto& w : words) {
        auto it = postings_.find(w);
        const auto* ids = it == postings_.end() ? &kNone : &it->second;
        if (rarest == nullptr || ids->size() < rarest->size()) rarest = ids;
      }
      for (const auto& id : *rarest) {
        bool all = std::all_of(words.begin(), words.end(), [&](const std::string& w) {
          auto it = postings_.find(w);
          return it != postings_.end() && it->second.count(id) > 0;
        });
        if (all) hits.emplace_back(docs_[id].at, id);
      }
      count = hits.size();
      std::sort(hits.begin(), hits.end(), std::greater<>());
      if (hits.size() > static_cast<size_t>(*limit)) hits.resize(*limit);
      for (const auto& [at, id] : hits) {
        const Doc& doc = docs_[id];
        items +=
            fmt::format(R"({}{{"id":{},"user":{},"text":{},"at":{}}})", items.size() > 1 ? "," : "",
                        Quote(id), Quote(doc.user), Quote(doc.text), doc.at);
      }
    }
    return Message().SetArrayJson("items", items + "]").SetUint("count", count);
  }

  Limits limits_;
  std::mutex mu_;
  std::unordered_map<std::string, Doc> docs_;                        // guarded by mu_
  std::unordered_map<std::string, std::set<std::string>> postings_;  // guarded by mu_
};

// --- follow --------------------------------------------------------------------------------------

class FollowService final : public shardkit::Handler {
 public:
  explicit FollowService(Limits limits) : limits_(limits) {}

  void Handle(Message m, const Context& ctx, ReplyFn reply) override {
    auto op = m.GetString("follow").value_or("");
    if (op == "user") return Follow(m, ctx, std::move(reply));
    if (op == "list") return List(m, ctx, std::move(reply));
    reply(Status::InvalidField("follow", "must be user or list"));
  }

 private:
  void Follow(const Message& m, const Context& ctx, ReplyFn reply) {
    auto user = RequiredString(m, "user");
    if (!user.ok()) return reply(user.status());
    auto target = RequiredString(m, "target");
    if (!target.ok()) return reply(target.status());
    if (*user == *target)
      return reply(Status::InvalidField("target", "a user cannot follow themselves"));
    // One entity per (user, target): following twice is the same save.
    Message save;
    save.SetString("store", "save").SetString("kind", "follow");
    save.SetObjectJson(
        "ent", fmt::format(R"({{"id":{},"user":{},"target":{},"at":{}}})",
                           Quote(*user + ">" + *target), Quote(*user), Quote(*target), NowMs()));
    ctx.Act(std::move(save), [user = *user, target = *target,
                              reply = std::move(reply)](Result<Message> saved) {
      if (!saved.ok()) return reply(Upstream("follow", "store:save,kind:follow", saved.status()));
      reply(
          Message().SetString("user", user).SetString("target", target).SetBool("following", true));
    });
  }

  void List(const Message& m, const Context& ctx, ReplyFn reply) {
    auto kind = m.GetString("kind").value_or("");
    if (kind != "followers" && kind != "following")
      return reply(Status::InvalidField("kind", "must be followers or following"));
    auto user = RequiredString(m, "user");
    if (!user.ok()) return reply(user.status());
    // followers of U: rows whose target is U, answered by their user; following: the reverse.
    const bool followers = kind == "followers";
    std::string filter = followers ? "target" : "user";
    std::string answer_field = followers ? "user" : "target";
    Message list;
    list.SetString("store", "list").SetString("kind", "follow");
    list.SetObjectJson("q", fmt::format(R"({{"{}":{},"fields$":["{}"],"limit$":{}}})", filter,
                                        Quote(*user), answer_field, limits_.max_followers));
    ctx.Act(std::move(list), [answer_field, reply = std::move(reply)](Result<Message> page) {
      if (!page.ok()) return reply(Upstream("follow", "store:list,kind:follow", page.status()));
      auto doc = shardkit::ParseJson(page->GetArrayJson("items").value_or("[]"), "items");
      if (!doc.ok() || !doc->IsArray())
        return reply(Status::Internal("follow: store:list answered without items"));
      std::string users = "[";
      size_t count = 0;
      for (const auto& item : doc->GetArray()) {
        auto it = item.FindMember(answer_field.c_str());
        if (it == item.MemberEnd() || !it->value.IsString()) continue;
        users += (count++ ? "," : "") + Quote(it->value.GetString());
      }
      reply(Message().SetArrayJson("users", users + "]").SetUint("count", count));
    });
  }

  Limits limits_;
};

// --- timeline ------------------------------------------------------------------------------------

class TimelineService final : public shardkit::Handler {
 public:
  explicit TimelineService(Limits limits) : limits_(limits) {}

  void Handle(Message m, const Context& ctx, ReplyFn reply) override {
    auto op = m.GetString("timeline").value_or("");
    auto user = RequiredString(m, "user");
    if (op != "insert" && op != "list")
      return reply(Status::InvalidField("timeline", "must be insert or list"));
    if (!user.ok()) return reply(user.status());
    if (op == "insert") return Insert(*user, m, ctx, std::move(reply));
    List(*user, m, ctx, std::move(reply));
  }

 private:
  // One row per (timeline owner, entry): inserting the same entry twice is the same save. The
  // row carries `user` (the owner), the kind's shard key: a user's timeline lives on one shard.
  void Insert(const std::string& user, const Message& m, const Context& ctx, ReplyFn reply) {
    auto entry = EntryOf(m);
    if (!entry.ok()) return reply(entry.status());
    Message save;
    save.SetString("store", "save").SetString("kind", "timeline").SetString("user", user);
    save.SetObjectJson(
        "ent", fmt::format(R"({{"id":{},"user":{},"entry":{},"author":{},"text":{},"at":{}}})",
                           Quote(user + "/" + entry->id), Quote(user), Quote(entry->id),
                           Quote(entry->user), Quote(entry->text), entry->at));
    ctx.Act(std::move(save), [reply = std::move(reply)](Result<Message> saved) {
      if (!saved.ok())
        return reply(Upstream("timeline", "store:save,kind:timeline", saved.status()));
      reply(std::move(saved));
    });
  }

  void List(const std::string& user, const Message& m, const Context& ctx, ReplyFn reply) {
    auto limit = PageSize(m, limits_);
    if (!limit.ok()) return reply(limit.status());
    Message list;
    list.SetString("store", "list").SetString("kind", "timeline").SetString("user", user);
    list.SetObjectJson(
        "q", fmt::format(R"({{"user":{},"sort$":{{"at":-1}},"limit$":{}}})", Quote(user), *limit));
    ctx.Act(std::move(list), [reply = std::move(reply)](Result<Message> page) {
      if (!page.ok()) return reply(Upstream("timeline", "store:list,kind:timeline", page.status()));
      reply(Message().SetArrayJson("items", page->GetArrayJson("items").value_or("[]")));
    });
  }

  Limits limits_;
};

// --- fanout --------------------------------------------------------------------------------------

// Counts replies of parallel sends; answers once, with the first error or {"delivered":N}.
class Gather {
 public:
  Gather(size_t expected, ReplyFn reply) : remaining_(expected), reply_(std::move(reply)) {}
  void Done(const Status& status) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!status.ok() && first_error_.ok()) first_error_ = status;
    if (status.ok()) ++delivered_;
    if (--remaining_ > 0) return;
    Status error = first_error_;
    size_t delivered = delivered_;
    lock.unlock();
    if (!error.ok()) return reply_(error);
    reply_(Message().SetUint("delivered", delivered));
  }

 private:
  std::mutex mu_;
  size_t remaining_;      // guarded by mu_
  size_t delivered_ = 0;  // guarded by mu_
  Status first_error_;    // guarded by mu_
  ReplyFn reply_;
};

class FanoutService final : public shardkit::Handler {
 public:
  void Handle(Message m, const Context& ctx, ReplyFn reply) override {
    auto entry = EntryOf(m);
    if (!entry.ok()) return reply(entry.status());
    Message list;
    list.SetString("follow", "list").SetString("kind", "followers").SetString("user", entry->user);
    ctx.Act(std::move(list), [ctx, entry = *entry,
                              reply = std::move(reply)](Result<Message> followers) mutable {
      if (!followers.ok())
        return reply(Upstream("fanout", "follow:list,kind:followers", followers.status()));
      auto doc = shardkit::ParseJson(followers->GetArrayJson("users").value_or("[]"), "users");
      if (!doc.ok() || !doc->IsArray())
        return reply(Status::Internal("fanout: follow:list answered without users"));
      std::vector<std::string> owners = {entry.user};  // the author sees their own entry too
      for (const auto& u : doc->GetArray()) {
        if (u.IsString()) owners.emplace_back(u.GetString());
      }
      auto gather = std::make_shared<Gather>(owners.size(), std::move(reply));
      for (const auto& owner : owners) {
        Message insert;
        insert.SetString("timeline", "insert").SetString("user", owner);
        insert.SetObjectJson("ent", entry.json);
        ctx.Act(std::move(insert), [gather](Result<Message> r) {
          gather->Done(r.ok() ? Status::Ok() : Upstream("fanout", "timeline:insert", r.status()));
        });
      }
    });
  }
};

}  // namespace

std::shared_ptr<shardkit::Handler> MakePostService(Limits limits) {
  return std::make_shared<PostService>(limits);
}
std::shared_ptr<shardkit::Handler> MakeIndexService(Limits limits) {
  return std::make_shared<IndexService>(limits);
}
std::shared_ptr<shardkit::Handler> MakeFollowService(Limits limits) {
  return std::make_shared<FollowService>(limits);
}
std::shared_ptr<shardkit::Handler> MakeTimelineService(Limits limits) {
  return std::make_shared<TimelineService>(limits);
}
std::shared_ptr<shardkit::Handler> MakeFanoutService() { return std::make_shared<FanoutService>(); }

std::shared_ptr<shardkit::Handler> MakeBroadcastService(std::vector<Subscriber> subscribers) {
  return shardkit::MakeHandler(
      [subscribers = std::move(subscribers)](Message m, const Context& ctx, ReplyFn reply) {
        if (subscribers.empty()) return reply(Message().SetUint("delivered", 0));
        auto gather = std::make_shared<Gather>(subscribers.size(), std::move(reply));
        for (const auto& subscriber : subscribers) {
          // A subscriber's error is `unavailable` here: to the sender it means "not delivered",
          // whatever the subscriber's reason (a no_route there is not "nobody listens" here).
          subscriber.handler->Handle(m, ctx, [gather, name = subscriber.name](Result<Message> r) {
            gather->Done(r.ok() ? Status::Ok()
                                : Status::Unavailable(fmt::format("broadcast to {}: {}", name,
                                                                  r.status().ToString())));
          });
        }
      });
}

}  // namespace microblog
