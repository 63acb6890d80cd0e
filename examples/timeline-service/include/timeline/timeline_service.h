// An example service for the shardkit::testing tutorial (docs/testing.md): a user's timeline.
//
//   timeline:post,user:U   text:"…"        saves {user, text, at} with store:save,kind:entry,
//                                          publishes info:entry,user:U,id:I (fire-and-forget) and
//                                          answers {"id":"…"}
//   timeline:list,user:U   [limit:N]       answers the user's entries, newest first:
//                                          {"items":[…]} from store:list,kind:entry
//
// It knows nothing of where the store runs: it only sends messages, so its tests mock them.
// Errors: `invalid` for a missing user or an empty or too long text (nothing is saved); a store
// error is answered as is.
//
// Thread-safety: Handle may be called from any thread.
#pragma once

#include <cstddef>
#include <memory>

#include <shardkit/message/clock.h>
#include <shardkit/message/handler.h>

namespace timeline {

struct TimelineOptions {
  const shardkit::Clock* clock = &shardkit::SystemClock::Default();  // stamps "at"
  size_t max_text_bytes = 280;
  int default_limit = 20;
};

std::shared_ptr<shardkit::Handler> MakeTimelineService(TimelineOptions options = {});

}  // namespace timeline
