// The microblog's projections and their projection types (projections.h).
#include "microblog/projections.h"

#include <cctype>
#include <mutex>
#include <set>

#include <fmt/format.h>

#include <shardkit/cqrs/read_model.h>
#include <shardkit/message/json.h>
#include <shardkit/services/projection_types.h>

namespace microblog {
namespace {

using shardkit::AppendJsonString;
using shardkit::Message;
using shardkit::Result;
using shardkit::Status;
using shardkit::Value;
using shardkit::ValueType;
using shardkit::cqrs::EntityStringField;
using shardkit::cqrs::Event;
using shardkit::cqrs::EventOp;
using shardkit::cqrs::GroupIndex;
using shardkit::cqrs::Projection;
using shardkit::cqrs::ReadModelKey;
using shardkit::cqrs::ReadView;
using shardkit::cqrs::StateView;
using shardkit::cqrs::Write;

Result<uint64_t> OptionalLimit(const Message& m, uint64_t fallback) {
  const Value* v = m.Find("limit");
  if (v == nullptr) return fallback;
  auto n = m.GetUint("limit");
  if (!n || *n == 0 || v->type != ValueType::kNumber)
    return Status::InvalidField("limit", "must be a positive integer");
  return *n;
}

std::string IdsJson(const std::vector<std::string>& ids) {
  std::string out = "[";
  for (const auto& id : ids) {
    if (out.size() > 1) out += ',';
    AppendJsonString(id, out);
  }
  out += ']';
  return out;
}

class EntriesPerUserProjection final : public Projection {
 public:
  EntriesPerUserProjection(std::string kind, std::string user_field)
      : kind_(std::move(kind)), user_field_(std::move(user_field)) {}
  std::string name() const override { return "entries_per_user:" + kind_; }

  Result<std::vector<Write>> Apply(const Event& e, const StateView& state) override {
    if (e.kind != kind_ || e.op == EventOp::kOther) return std::vector<Write>{};
    std::optional<std::string> user;
    if (e.op == EventOp::kSave) user = EntityStringField(e.value, user_field_);
    return groups_.Move(state, e.id, user);
  }

  Result<Message> Query(const Message& m, const ReadView& view) override {
    auto user = m.GetString("user");
    if (!user) return Status::InvalidField("user", "must be a string");
    auto limit = OptionalLimit(m, 1000);
    if (!limit.ok()) return std::move(limit).status();
    auto count = groups_.CountOf(view, *user);
    if (!count.ok()) return std::move(count).status();
    auto ids = groups_.Members(view, *user, *limit);
    if (!ids.ok()) return std::move(ids).status();
    Message out;
    out.SetString("user", *user);
    out.SetUint("count", *count);
    out.SetArrayJson("ids", IdsJson(*ids));
    return out;
  }

 private:
  const std::string kind_, user_field_;
  const GroupIndex groups_{'x', 'n', 'u'};
};

class FollowerCountProjection final : public Projection {
 public:
  FollowerCountProjection(std::string kind, std::string follower_field, std::string followee_field)
      : kind_(std::move(kind)),
        follower_field_(std::move(follower_field)),
        followee_field_(std::move(followee_field)) {}
  std::string name() const override { return "follower_count:" + kind_; }

  Result<std::vector<Write>> Apply(const Event& e, const StateView& state) override {
    if (e.kind != kind_ || e.op == EventOp::kOther) return std::vector<Write>{};
    std::optional<std::string> followee;
    if (e.op == EventOp::kSave && EntityStringField(e.value, follower_field_))
      followee = EntityStringField(e.value, followee_field_);
    return groups_.Move(state, e.id, followee);
  }

  Result<Message> Query(const Message& m, const ReadView& view) override {
    auto user = m.GetString("user");
    if (!user) return Status::InvalidField("user", "must be a string");
    auto count = groups_.CountOf(view, *user);
    if (!count.ok()) return std::move(count).status();
    Message out;
    out.SetString("user", *user);
    out.SetUint("followers", *count);
    return out;
  }

 private:
  const std::string kind_, follower_field_, followee_field_;
  const GroupIndex groups_{'f', 'c', 'm'};
};

std::set<std::string> Words(std::string_view text) {
  std::set<std::string> words;
  std::string word;
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || u >= 0x80) {
      word.push_back(static_cast<char>(u < 0x80 ? std::tolower(u) : u));
    } else if (!word.empty()) {
      words.insert(std::move(word));
      word.clear();
    }
  }
  if (!word.empty()) words.insert(std::move(word));
  return words;
}

class SearchIndexProjection final : public Projection {
 public:
  SearchIndexProjection(std::string kind, std::string text_field)
      : kind_(std::move(kind)), text_field_(std::move(text_field)) {}
  std::string name() const override { return "search:" + kind_; }

  Result<std::vector<Write>> Apply(const Event& e, const StateView& state) override {
    if (e.kind != kind_ || e.op == EventOp::kOther) return std::vector<Write>{};
    std::set<std::string> now;
    if (e.op == EventOp::kSave) {
      if (auto text = EntityStringField(e.value, text_field_)) now = Words(*text);
    }
    auto old_text = state.Get(ReadModelKey({"d", e.id}));
    if (!old_text.ok()) return std::move(old_text).status();
    std::set<std::string> before =
        old_text->has_value() ? Words(**old_text) : std::set<std::string>{};
    std::vector<Write> writes;
    for (const auto& w : before) {
      if (!now.count(w)) writes.push_back({ReadModelKey({"w", w, e.id}), std::nullopt});
    }
    std::string joined;
    for (const auto& w : now) {
      if (!before.count(w)) writes.push_back({ReadModelKey({"w", w, e.id}), std::string()});
      if (!joined.empty()) joined += ' ';
      joined += w;
    }
    if (joined.empty()) {
      writes.push_back({ReadModelKey({"d", e.id}), std::nullopt});
    } else if (!old_text->has_value() || **old_text != joined) {
      writes.push_back({ReadModelKey({"d", e.id}), joined});
    }
    return writes;
  }

  Result<Message> Query(const Message& m, const ReadView& view) override {
    auto text = m.GetString("text");
    if (!text) return Status::InvalidField("text", "must be a string");
    std::set<std::string> words = Words(*text);
    if (words.empty()) return Status::InvalidField("text", "has no words");
    auto limit = OptionalLimit(m, 100);
    if (!limit.ok()) return std::move(limit).status();
    std::vector<std::string> ids;
    const std::string& first = *words.begin();
    const std::string prefix = ReadModelKey({"w", first, ""});
    Status error;
    Status s = view.Scan(prefix, "", [&](std::string_view key, std::string_view) {
      std::string id(key.substr(prefix.size()));
      for (const auto& w : words) {
        if (w == first) continue;
        auto hit = view.Get(ReadModelKey({"w", w, id}));
        if (!hit.ok()) {
          error = hit.status();
          return false;
        }
        if (!hit->has_value()) return true;
      }
      ids.push_back(std::move(id));
      return ids.size() < *limit;
    });
    if (!s.ok()) return s;
    if (!error.ok()) return error;
    Message out;
    out.SetArrayJson("ids", IdsJson(ids));
    return out;
  }

 private:
  const std::string kind_, text_field_;
};

}  // namespace

std::unique_ptr<Projection> MakeEntriesPerUserProjection(std::string kind, std::string user_field) {
  return std::make_unique<EntriesPerUserProjection>(std::move(kind), std::move(user_field));
}
std::unique_ptr<Projection> MakeSearchIndexProjection(std::string kind, std::string text_field) {
  return std::make_unique<SearchIndexProjection>(std::move(kind), std::move(text_field));
}
std::unique_ptr<Projection> MakeFollowerCountProjection(std::string kind,
                                                        std::string follower_field,
                                                        std::string followee_field) {
  return std::make_unique<FollowerCountProjection>(std::move(kind), std::move(follower_field),
                                                   std::move(followee_field));
}

namespace {

using shardkit::services::ProjectionInstance;
using shardkit::services::Settings;

// The non-empty string setting `key`, or `fallback` when it is absent.
Result<std::string> Field(const Settings& s, std::string_view key, std::string fallback) {
  auto value = s.GetString(key, std::move(fallback));
  if (value.ok() && value->empty()) return s.Error(key, "must not be empty");
  return value;
}

Result<ProjectionInstance> EntriesPerUserFrom(const Settings& s) {
  auto kind = Field(s, "kind", "entry");
  if (!kind.ok()) return kind.status();
  auto user = Field(s, "user_field", "user");
  if (!user.ok()) return user.status();
  return ProjectionInstance{MakeEntriesPerUserProjection(*kind, *user), {"entries:user"}};
}

Result<ProjectionInstance> SearchIndexFrom(const Settings& s) {
  auto kind = Field(s, "kind", "entry");
  if (!kind.ok()) return kind.status();
  auto text = Field(s, "text_field", "text");
  if (!text.ok()) return text.status();
  return ProjectionInstance{MakeSearchIndexProjection(*kind, *text), {"search:query"}};
}

Result<ProjectionInstance> FollowerCountFrom(const Settings& s) {
  auto kind = Field(s, "kind", "follow");
  if (!kind.ok()) return kind.status();
  auto follower = Field(s, "follower_field", "follower");
  if (!follower.ok()) return follower.status();
  auto followee = Field(s, "followee_field", "followee");
  if (!followee.ok()) return followee.status();
  return ProjectionInstance{MakeFollowerCountProjection(*kind, *follower, *followee),
                            {"followers:count"}};
}

}  // namespace

void RegisterMicroblogProjections() {
  static std::once_flag once;
  std::call_once(once, [] {
    using shardkit::services::RegisterProjectionType;
    (void)RegisterProjectionType("microblog.entries-per-user", {.settings = {"kind", "user_field"},
                                                                .factory = EntriesPerUserFrom});
    (void)RegisterProjectionType("microblog.search-index",
                                 {.settings = {"kind", "text_field"}, .factory = SearchIndexFrom});
    (void)RegisterProjectionType(
        "microblog.follower-count",
        {.settings = {"kind", "follower_field", "followee_field"}, .factory = FollowerCountFrom});
  });
}

}  // namespace microblog
