// The likes-total read model: each post's last count, and their sum.
#include <likes/likes_total.h>

#include <shardkit/message/json.h>
#include <shardkit/services/projection_types.h>

namespace likes {
namespace {

namespace cqrs = shardkit::cqrs;
using shardkit::Result;

// Read-model keys: "post/<id>" -> that post's count; "likes", "posts" -> the totals.
int64_t Number(const std::optional<std::string>& text) { return text ? std::stoll(*text) : 0; }

class LikesTotal final : public cqrs::Projection {
 public:
  explicit LikesTotal(std::string kind) : kind_(std::move(kind)) {}
  std::string name() const override { return "likes-total:" + kind_; }

  Result<std::vector<cqrs::Write>> Apply(const cqrs::Event& e,
                                         const cqrs::StateView& state) override {
    if (e.kind != kind_ || e.op == cqrs::EventOp::kOther) return std::vector<cqrs::Write>{};
    int64_t count = 0;  // a removed post has none
    if (e.op == cqrs::EventOp::kSave) {
      auto ent = shardkit::ParseJson(e.value, "ent");
      if (!ent.ok()) return ent.status();
      if (ent->HasMember("count") && (*ent)["count"].IsInt64()) count = (*ent)["count"].GetInt64();
    }
    auto before = state.Get("post/" + e.id);
    auto likes = state.Get("likes");
    auto posts = state.Get("posts");
    for (const auto* r : {&before, &likes, &posts}) {
      if (!r->ok()) return r->status();
    }
    const int64_t old = Number(*before);
    std::optional<std::string> now;  // absent: the post has no likes (any more)
    if (count > 0) now = std::to_string(count);
    return std::vector<cqrs::Write>{
        {"post/" + e.id, now},
        {"likes", std::to_string(Number(*likes) + count - old)},
        {"posts", std::to_string(Number(*posts) + (count > 0) - (old > 0))},
    };
  }

  Result<shardkit::Message> Query(const shardkit::Message&, const cqrs::ReadView& view) override {
    auto likes = view.Get("likes");
    if (!likes.ok()) return likes.status();
    auto posts = view.Get("posts");
    if (!posts.ok()) return posts.status();
    shardkit::Message out;
    out.SetInt("likes", Number(*likes)).SetInt("posts", Number(*posts));
    return out;
  }

 private:
  const std::string kind_;
};

// The factory the `projection` service calls for projection = "likes-total".
Result<shardkit::services::ProjectionInstance> FromConfig(const shardkit::services::Settings& s) {
  auto kind = s.GetString("kind", "likes");
  if (!kind.ok()) return kind.status();
  if (kind->empty()) return s.Error("kind", "must not be empty");
  return shardkit::services::ProjectionInstance{MakeLikesTotal(*kind), {"likes:total"}};
}

}  // namespace

std::unique_ptr<cqrs::Projection> MakeLikesTotal(std::string kind) {
  return std::make_unique<LikesTotal>(std::move(kind));
}

shardkit::Status RegisterLikesTotalType() {
  return shardkit::services::RegisterProjectionType("likes-total",
                                                    {.settings = {"kind"}, .factory = FromConfig});
}

}  // namespace likes
