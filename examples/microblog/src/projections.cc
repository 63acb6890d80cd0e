// The microblog's projections and their projection types (projections.h).
#include "microblog/projections.h"

#include <cctype>
#include <functional>
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

// A projection of one field of the entities of one kind: other kinds change nothing, and a
// removed entity (or one saved without the field) has no value.
class FieldProjection : public Projection {
 public:
  // Named "<prefix><kind>".
  FieldProjection(std::string_view prefix, std::string kind, std::string field)
      : name_(std::string(prefix) + kind), kind_(std::move(kind)), field_(std::move(field)) {}
  std::string name() const override { return name_; }

  Result<std::vector<Write>> Apply(const Event& e, const StateView& state) final {
    if (e.kind != kind_ || e.op == EventOp::kOther) return std::vector<Write>{};
    std::optional<std::string> value;
    if (e.op == EventOp::kSave) value = EntityStringField(e.value, field_);
    return ApplyField(e.id, value, state);
  }

 protected:
  // The writes for entity `id` whose field is now `value`.
  virtual Result<std::vector<Write>> ApplyField(const std::string& id,
                                                const std::optional<std::string>& value,
                                                const StateView& state) = 0;

 private:
  const std::string name_, kind_, field_;
};

class EntriesPerUserProjection final : public FieldProjection {
 public:
  using FieldProjection::FieldProjection;

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
  Result<std::vector<Write>> ApplyField(const std::string& id,
                                        const std::optional<std::string>& user,
                                        const StateView& state) override {
    return groups_.Move(state, id, user);
  }

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

class SearchIndexProjection final : public FieldProjection {
 public:
  using FieldProjection::FieldProjection;

 private:
  Result<std::vector<Write>> ApplyField(const std::string& id,
                                        const std::optional<std::string>& text,
                                        const StateView& state) override {
    std::set<std::string> now;
    if (text) now = Words(*text);
    auto old_text = state.Get(ReadModelKey({"d", id}));
    if (!old_text.ok()) return std::move(old_text).status();
    std::set<std::string> before =
        old_text->has_value() ? Words(**old_text) : std::set<std::string>{};
    std::vector<Write> writes;
    for (const auto& w : before) {
      if (!now.count(w)) writes.push_back({ReadModelKey({"w", w, id}), std::nullopt});
    }
    std::string joined;
    for (const auto& w : now) {
      if (!before.count(w)) writes.push_back({ReadModelKey({"w", w, id}), std::string()});
      if (!joined.empty()) joined += ' ';
      joined += w;
    }
    if (joined.empty()) {
      writes.push_back({ReadModelKey({"d", id}), std::nullopt});
    } else if (!old_text->has_value() || **old_text != joined) {
      writes.push_back({ReadModelKey({"d", id}), joined});
    }
    return writes;
  }

 public:
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
};

}  // namespace

std::unique_ptr<Projection> MakeEntriesPerUserProjection(std::string kind, std::string user_field) {
  return std::make_unique<EntriesPerUserProjection>("entries_per_user:", std::move(kind),
                                                    std::move(user_field));
}
std::unique_ptr<Projection> MakeSearchIndexProjection(std::string kind, std::string text_field) {
  return std::make_unique<SearchIndexProjection>("search:", std::move(kind), std::move(text_field));
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

// A projection type whose settings are names of entity fields (and the kind), each non-empty
// with a default: read in order, they are the arguments of `make`.
struct FieldsType {
  const char* name;
  std::vector<std::pair<std::string, std::string>> settings;  // key, default
  std::string query;                                          // the pattern it answers
  std::function<std::unique_ptr<Projection>(std::vector<std::string>)> make;
};

Result<ProjectionInstance> FromFields(const FieldsType& type, const Settings& s) {
  std::vector<std::string> fields;
  for (const auto& [key, fallback] : type.settings) {
    auto value = s.GetString(key, fallback);
    if (!value.ok()) return value.status();
    if (value->empty()) return s.Error(key, "must not be empty");
    fields.push_back(*std::move(value));
  }
  return ProjectionInstance{type.make(std::move(fields)), {type.query}};
}

const std::vector<FieldsType>& Types() {
  static const std::vector<FieldsType> types = {
      {"microblog.entries-per-user",
       {{"kind", "entry"}, {"user_field", "user"}},
       "entries:user",
       [](auto f) { return MakeEntriesPerUserProjection(f[0], f[1]); }},
      {"microblog.search-index",
       {{"kind", "entry"}, {"text_field", "text"}},
       "search:query",
       [](auto f) { return MakeSearchIndexProjection(f[0], f[1]); }},
      {"microblog.follower-count",
       {{"kind", "follow"}, {"follower_field", "follower"}, {"followee_field", "followee"}},
       "followers:count",
       [](auto f) { return MakeFollowerCountProjection(f[0], f[1], f[2]); }},
  };
  return types;
}

}  // namespace

void RegisterMicroblogProjections() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (const FieldsType& type : Types()) {
      std::vector<std::string> keys;
      for (const auto& setting : type.settings) keys.push_back(setting.first);
      (void)shardkit::services::RegisterProjectionType(
          type.name, {.settings = std::move(keys),
                      .factory = [&type](const Settings& s) { return FromFields(type, s); }});
    }
  });
}

}  // namespace microblog
