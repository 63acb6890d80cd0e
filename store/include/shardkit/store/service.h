// StoreService: the store:* message protocol over one EntityStore. It is a Handler, so a node
// routes `store:*,kind:entry` (or `store:*`) to it like to any other service.
//
// Messages (docs/store.md has every field and reply):
//   store:save,kind:K     ent:{…} [id] [version:N] [insert_only:true] [ttl:S]  -> {"ent":{…}}
//   store:save,kind:K     ents:[{…},…] (same options per batch)                -> {"items":[…]}
//   store:load,kind:K     id:I                                                  -> {"ent":{…}}
//   store:load,kind:K     ids:[I,…]                                             -> {"items":[…]}
//   store:list,kind:K     [q:{field:value,…, sort$, limit$, skip$, fields$, cursor$}]
//                                                            -> {"items":[…],"cursor":"…"?}
//     (without limit$, one page of kDefaultListLimit items; follow the cursor for the rest)
//   store:remove,kind:K   id:I                                                  -> {"ent":{…}}
//   store:remove,kind:K   q:{…} all:true                         -> {"items":[…],"count":N}
//   store:changes         [from:N] [limit:M] [wait_ms:W]         -> {"changes":[…],"last":L}
// store:changes with wait_ms is a long-poll: when nothing at or past `from` exists yet, the reply
// waits until a record arrives (answered at once, woken by the feed) or W ms pass (answered with
// what exists then, maybe nothing); never past the message's deadline. No thread waits meanwhile.
// Per-item answers of bulk forms are {"ent":{…}} or {"error$":{…}}, in request order.
//
// Bad input answers `invalid` with a message that starts with the field ("ent: must be an
// object"), writes nothing, and leaves the service serving.
//
// Thread-safety: Handle may be called from any thread. By default the store call runs on the
// calling thread (it blocks on disk); give an executor to run it elsewhere.
#pragma once

#include <functional>
#include <memory>

#include <shardkit/message/handler.h>
#include <shardkit/store/entity_store.h>
#include <shardkit/store/scheduler.h>

namespace shardkit::store {

struct StoreServiceOptions {
  // Runs a store call; nullptr: inline on the calling thread. A node passes its disk pool here
  // so I/O threads never block.
  std::function<void(std::function<void()>)> executor;
  // Most items one bulk message may carry, and the largest page of store:changes.
  size_t max_batch_items = 10'000;
  size_t max_changes_per_read = 10'000;
  // The bound on a store:list page's items (a node passes its max_reply_bytes): a page that would
  // hold more is refused (`invalid`, naming q.limit$) without being read to the end; a
  // store:changes reply holds fewer records. 0: none.
  size_t max_reply_bytes = 16 * 1024 * 1024;
  // The longest wait_ms a store:changes may ask for (more is refused as invalid).
  int64_t max_wait_ms = 60'000;
  // Ends the waits of store:changes long-polls; nullptr: Scheduler::Shared(). Must outlive the
  // service.
  Scheduler* scheduler = nullptr;
};

// The Query of a store:list or store:remove message (its `kind` and `q`), validated as the service
// does: `invalid` naming the field ("q.limit$: must be a non-negative integer"). Shared with the
// shard router, which must read queries exactly as stores do.
Result<Query> QueryFromMessage(const Message& message);

// A handler answering store:* messages from `store`, which it shares (several patterns, e.g.
// `store:*,kind:entry` and `store:*,kind:entry,cache:true`, may route to one store).
std::shared_ptr<Handler> MakeStoreService(std::shared_ptr<EntityStore> store,
                                          StoreServiceOptions options = {});

}  // namespace shardkit::store
