// A small projection for the CQRS tests, written as a user would (projection.h, read_model.h):
// how many entities of kind "entry" each user has, and which.
//   entries:user,user:U      -> {"user":"U","count":N,"ids":[…]}   (ids in byte order, at most
//   1000)
#pragma once

#include <memory>

#include <shardkit/cqrs/read_model.h>
#include <shardkit/message/json.h>

namespace shardkit::cqrs::testing {

class CountPerUserProjection final : public Projection {
 public:
  std::string name() const override { return "count_per_user:entry"; }

  Result<std::vector<Write>> Apply(const Event& e, const StateView& state) override {
    if (e.kind != "entry" || e.op == EventOp::kOther) return std::vector<Write>{};
    std::optional<std::string> user;
    if (e.op == EventOp::kSave) user = EntityStringField(e.value, "user");
    return users_.Move(state, e.id, user);
  }

  Result<Message> Query(const Message& m, const ReadView& view) override {
    auto user = m.GetString("user");
    if (!user) return Status::InvalidField("user", "must be a string");
    auto count = users_.CountOf(view, *user);
    if (!count.ok()) return std::move(count).status();
    auto ids = users_.Members(view, *user, 1000);
    if (!ids.ok()) return std::move(ids).status();
    std::string json = "[";
    for (const auto& id : *ids) {
      if (json.size() > 1) json += ',';
      AppendJsonString(id, json);
    }
    Message out;
    out.SetString("user", *user);
    out.SetUint("count", *count);
    out.SetArrayJson("ids", json + "]");
    return out;
  }

 private:
  const GroupIndex users_{'o', 'n', 'm'};
};

inline std::unique_ptr<Projection> MakeCountPerUserProjection() {
  return std::make_unique<CountPerUserProjection>();
}

}  // namespace shardkit::cqrs::testing
