// An example projection type of your own (docs/extending.md, "Your own projection type"): a read
// model of the like counters, fed by their store's change feed.
//
//   likes:total         answers {"likes":N,"posts":M}: all likes, and how many posts have any.
//
// Config ([[service]] type = "projection", projection = "likes-total"): kind (string, default
// "likes"), plus the projection service's own keys (feed or log, path, …; docs/cqrs.md).
#pragma once

#include <memory>
#include <string>

#include <shardkit/cqrs/projection.h>
#include <shardkit/message/status.h>

namespace likes {

std::unique_ptr<shardkit::cqrs::Projection> MakeLikesTotal(std::string kind = "likes");

// Registers the "likes-total" projection type with the process's projection registry. Call once,
// before a node starts (a second call answers `conflict`).
shardkit::Status RegisterLikesTotalType();

}  // namespace likes
