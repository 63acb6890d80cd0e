#include "remove_by_query.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <cstdint>
#include <limits>

#include <shardkit/message/json.h>

#include "cross_shard_move.h"

namespace shardkit::shard::internal {

Result<Message> MeasureRemoval(const Message& remove) {
  rapidjson::Document q;
  auto text = remove.GetObjectJson("q").value_or("{}");
  q.Parse(text.data(), text.size());
  if (!q.IsObject()) return Status::InvalidField("q", "must be an object");
  q.RemoveMember("sort$");  // a remove takes every match: the order changes nothing
  q.RemoveMember("fields$");
  q.AddMember("limit$", rapidjson::Value(std::numeric_limits<int64_t>::max()), q.GetAllocator());
  Message list = remove;
  list.SetString("store", "list");
  list.Remove("all");
  list.meta().idempotency_key.clear();  // a read: nothing to replay
  list.SetObjectJson("q", ToJsonText(q));
  return list;
}

namespace {

Status TooLarge(size_t bound, std::string_view why) {
  return Status::Invalid(
      fmt::format("q: removing by query would answer more removed entities than "
                  "max_reply_bytes allows ({} bytes) {}; nothing was removed: remove with a "
                  "narrower q, or by id",
                  bound, why),
      JsonObject().Add("field", "q").Add("max_reply_bytes", bound).str());
}

}  // namespace

Result<std::map<std::string, uint64_t>> RemovalShares(const std::vector<std::string>& shards,
                                                      ShardAnswers answers, size_t bound) {
  std::vector<uint64_t> measured(shards.size(), 0);
  uint64_t total = 0;
  for (size_t s = 0; s < shards.size(); ++s) {
    if (!answers[s]) continue;
    const Result<Message>& a = *answers[s];
    if (!a.ok()) {
      // A shard's own part over its own bound: its list is refused naming q.limit$.
      if (a.status().code() == Code::kInvalid &&
          a.status().details_json().find(R"("field":"q.limit$")") != std::string::npos)
        return TooLarge(bound, fmt::format("(shard {} alone holds more)", shards[s]));
      return ShardError(shards[s], a.status());
    }
    measured[s] = a->GetArrayJson("items").value_or("[]").size();
    total += measured[s];
  }
  if (total > bound) return TooLarge(bound, fmt::format("({} bytes match)", total));
  // Each shard may grow by an equal part of what is left while the removes are on their way.
  const uint64_t slack = (bound - total) / std::max<size_t>(shards.size(), 1);
  std::map<std::string, uint64_t> shares;
  for (size_t s = 0; s < shards.size(); ++s)
    shares[shards[s]] = std::max<uint64_t>(measured[s] + slack, 1);
  return shares;
}

Result<Message> JoinRemovals(const std::vector<std::string>& shards, ShardAnswers answers) {
  std::string array = "[";
  uint64_t count = 0;
  bool first = true;
  std::vector<std::string> failed;
  std::optional<Status> error;
  for (size_t s = 0; s < answers.size(); ++s) {
    const Result<Message>& a = *answers[s];
    if (!a.ok()) {
      failed.push_back(shards[s]);
      if (!error) error = ShardError(shards[s], a.status());
      continue;
    }
    count += a->GetUint("count").value_or(0);
    auto items = a->GetArrayJson("items").value_or("[]");
    if (items.size() > 2) {
      array += first ? "" : ",";
      array += items.substr(1, items.size() - 2);
      first = false;
    }
  }
  if (error) {
    // The other shards may have removed their parts: say exactly which failed and what was done.
    return Status(
        error->code(),
        fmt::format("{}; the shards that answered removed {} entities", error->message(), count),
        JsonObject()
            .Add("shard", failed[0])
            .AddRaw("failed", JsonStringArray(failed))
            .Add("removed", count)
            .str());
  }
  Message out;
  out.SetArrayJson("items", array + "]");
  out.SetUint("count", count);
  return out;
}

}  // namespace shardkit::shard::internal
