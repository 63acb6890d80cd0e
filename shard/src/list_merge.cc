#include "list_merge.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <unordered_map>

#include <shardkit/message/json.h>

namespace shardkit::shard::internal {

Result<std::string> ShardPageQuery(std::string_view client_q, const std::string& cursor,
                                   size_t limit) {
  rapidjson::Document q;
  q.Parse(client_q.data(), client_q.size());
  if (!q.IsObject()) q.SetObject();
  auto& alloc = q.GetAllocator();
  q.RemoveMember("skip$");
  q.RemoveMember("fields$");
  q.RemoveMember("limit$");
  q.AddMember("limit$", rapidjson::Value(static_cast<uint64_t>(limit)), alloc);
  if (!cursor.empty()) {
    q.RemoveMember("cursor$");
    q.AddMember("cursor$", rapidjson::Value(cursor.c_str(), alloc), alloc);
  }
  return ToJsonText(q);
}

namespace {

struct Item {
  std::string text;
  std::shared_ptr<const store::ListOrder::Key> key;
  std::string id;  // "" if the entity has no string id
  uint64_t version = 0;
};

// One shard's place in the merge: the rest of its current page and where its next page starts.
struct ShardPages {
  std::deque<Item> items;
  std::string cursor;   // "" when no item follows the page (or before the first page)
  bool asked = false;   // the first page was asked for
  bool failed = false;  // left out of the merge (`partial`)
  bool NeedsPage() const { return !failed && items.empty() && (!asked || !cursor.empty()); }
  bool HasMore() const { return !failed && (!items.empty() || !cursor.empty()); }
};

// An item of the answer; `dropped` when a newer copy of its entity followed (a list that read
// one shard before and another after a move's insert sees both).
struct Listed {
  std::string text;  // projected
  uint64_t version = 0;
  bool dropped = false;
};

class Merge : public std::enable_shared_from_this<Merge> {
 public:
  Merge(ListMergeOptions options, std::function<void(ListEnd)> done)
      : options_(std::move(options)),
        done_(std::move(done)),
        shards_(options_.shards.size()),
        skip_left_(options_.order->skip()),
        limit_(options_.order->limit().value_or(std::numeric_limits<size_t>::max())) {}

  // Merges until the answer is full or every shard is read to its end; pages are asked for as
  // the merge reaches the end of a shard's current one.
  void Run() {
    for (;;) {
      if (kept_ >= limit_) return End(AnyMore());
      std::vector<size_t> needed;
      for (size_t i = 0; i < shards_.size(); ++i)
        if (shards_[i].NeedsPage()) needed.push_back(i);
      if (!needed.empty()) {
        if (!AskForPages(needed)) return;  // the last page to arrive runs the merge on
        if (EndedByAnswers()) return;
        continue;
      }
      ShardPages* first = nullptr;
      for (ShardPages& shard : shards_) {
        if (shard.failed || shard.items.empty()) continue;
        // Ties keep map order, as a stable sort of the shards' pages would.
        if (!first ||
            options_.order->Compare(*shard.items.front().key, *first->items.front().key) < 0)
          first = &shard;
      }
      if (first == nullptr) return End(false);
      Item item = std::move(first->items.front());
      first->items.pop_front();
      if (skip_left_ > 0) {
        --skip_left_;
        continue;
      }
      if (Status added = Add(std::move(item)); !added.ok()) return Finish(added);
    }
  }

 private:
  // Asks each shard in `needed` for its next page, in parallel; true when all answered before
  // this returns (the merge goes on here), false when the last answer will resume it.
  bool AskForPages(const std::vector<size_t>& needed) {
    const size_t wanted = SaturatingAdd(skip_left_, limit_ - std::min(kept_, limit_));
    const size_t page = std::clamp<size_t>(wanted, 1, std::max<size_t>(options_.max_page, 1));
    pending_.store(needed.size() + 1);
    auto self = shared_from_this();
    for (size_t i : needed) {
      shards_[i].asked = true;
      std::string cursor = shards_[i].cursor;
      options_.fetch(i, cursor, page, [self, i](Result<Message> r) {
        self->Accept(i, std::move(r));
        if (--self->pending_ == 0 && !self->EndedByAnswers()) self->Run();
      });
    }
    return --pending_ == 0;
  }

  static size_t SaturatingAdd(size_t a, size_t b) {
    return a > std::numeric_limits<size_t>::max() - b ? std::numeric_limits<size_t>::max() : a + b;
  }

  // One shard's page (any thread; pages of several shards may arrive at once).
  void Accept(size_t index, Result<Message> answer) {
    std::lock_guard<std::mutex> lock(mu_);
    ShardPages& shard = shards_[index];
    const std::string& name = options_.shards[index];
    if (!answer.ok()) {
      failures_.emplace_back(index, answer.status());
      return;
    }
    rapidjson::Document items;
    auto text = answer->GetArrayJson("items").value_or("[]");
    items.Parse(text.data(), text.size());
    if (!items.IsArray()) {
      if (!fatal_) fatal_ = ShardError(name, Status::Internal("answer without items"));
      return;
    }
    for (const auto& item : items.GetArray()) {
      std::string item_text = ToJsonText(item);
      if (auto marker = MarkerOf(options_.kind, name, item_text)) {
        if (!marker->done) markers_.push_back(std::move(*marker));
        continue;  // never listed as an entity
      }
      auto key = options_.order->KeyOf(item_text);
      if (!key.ok()) {
        if (!fatal_) fatal_ = ShardError(name, key.status());
        return;
      }
      Item next{std::move(item_text), std::move(key).value(), "", 0};
      if (item.IsObject() && item.HasMember("id") && item["id"].IsString())
        next.id = item["id"].GetString();
      if (item.IsObject() && item.HasMember("version") && item["version"].IsUint64())
        next.version = item["version"].GetUint64();
      shard.items.push_back(std::move(next));
    }
    shard.cursor = std::string(answer->GetString("cursor").value_or(""));
  }

  // After a round of pages: ends the list on an error, a refreshed map or moves under way.
  bool EndedByAnswers() {
    if (fatal_) return Finish(*fatal_), true;
    if (!failures_.empty()) {
      bool stale = std::any_of(failures_.begin(), failures_.end(),
                               [](const auto& f) { return f.second.code() == Code::kWrongShard; });
      if (stale && options_.refresh && options_.refresh()) {
        ListEnd end;
        end.restart = true;
        done_(std::move(end));
        return true;
      }
      std::sort(failures_.begin(), failures_.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      if (!options_.partial)
        return Finish(ShardError(options_.shards[failures_[0].first], failures_[0].second)), true;
      for (const auto& failure : failures_) shards_[failure.first].failed = true;
      failures_.clear();
    }
    if (markers_.empty()) return false;
    ListEnd end;
    end.markers = std::move(markers_);
    done_(std::move(end));
    return true;
  }

  Status Add(Item item) {
    if (!item.id.empty()) {
      auto [it, fresh] = positions_.try_emplace(item.id, listed_.size());
      if (!fresh) {
        Listed& earlier = listed_[it->second];
        if (item.version <= earlier.version) return Status::Ok();  // the older copy
        earlier.dropped = true;
        --kept_;
        it->second = listed_.size();
      }
    }
    auto projected = options_.order->Project(item.text);
    if (!projected.ok()) return projected.status();
    listed_.push_back(Listed{std::move(projected).value(), item.version, false});
    last_key_ = std::move(item.key);
    ++kept_;
    return Status::Ok();
  }

  bool AnyMore() const {
    return std::any_of(shards_.begin(), shards_.end(),
                       [](const ShardPages& s) { return s.HasMore(); });
  }

  void End(bool more) {
    std::string array = "[";
    bool first = true;
    for (const Listed& item : listed_) {
      if (item.dropped) continue;
      array += first ? "" : ",";
      array += item.text;
      first = false;
    }
    Message out;
    out.SetArrayJson("items", array + "]");
    if (more && kept_ > 0) out.SetString("cursor", options_.order->CursorAfter(*last_key_));
    if (options_.partial) {
      std::vector<std::string> missing;
      for (size_t i = 0; i < shards_.size(); ++i)
        if (shards_[i].failed) missing.push_back(options_.shards[i]);
      out.SetArrayJson("missing", JsonStringArray(missing));
    }
    Finish(std::move(out));
  }

  void Finish(Result<Message> answer) {
    ListEnd end;
    end.answer = std::move(answer);
    done_(std::move(end));
  }

  const ListMergeOptions options_;
  const std::function<void(ListEnd)> done_;
  std::atomic<size_t> pending_{0};  // pages still to arrive in this round, plus the asker's
  std::mutex mu_;                   // guards what Accept writes while pages arrive in parallel:
  std::vector<ShardPages> shards_;  // (each page writes its own shard only)
  std::vector<std::pair<size_t, Status>> failures_;
  std::vector<MoveMarker> markers_;
  std::optional<Status> fatal_;
  // Read and written by one thread at a time, between rounds of pages:
  size_t skip_left_;
  const size_t limit_;
  size_t kept_ = 0;                                    // answer items not dropped
  std::vector<Listed> listed_;                         // the answer so far
  std::unordered_map<std::string, size_t> positions_;  // id -> its newest copy in listed_
  std::shared_ptr<const store::ListOrder::Key> last_key_;
};

}  // namespace

void MergeList(ListMergeOptions options, std::function<void(ListEnd)> done) {
  std::make_shared<Merge>(std::move(options), std::move(done))->Run();
}

}  // namespace shardkit::shard::internal
