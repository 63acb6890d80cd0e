// The microblog's read models, as projections (shardkit/cqrs/projection.h) a `projection` service
// of a shardkit-microblog node runs (docs/microblog.md, "Read models"). Each reads save/remove
// events of one kind; ids, users and words are stored in keys separated by NUL, so any text is
// safe in them. Missing or malformed fields in an entity make it count as absent for that
// projection (no error).
//
// EntriesPerUser(kind, user_field): how many entities each user has, and which.
//   entries:user,user:U [limit:N]                -> {"user":"U","count":N,"ids":[…]}
//
// SearchIndex(kind, text_field): words -> entity ids. Words are runs of ASCII letters and digits
// (and any non-ASCII bytes), lower-cased.
//   search:query,text:"…" [limit:N]              -> {"ids":[…]}   (entities holding every word)
//
// FollowerCount(kind, follower_field, followee_field): a follow entity
// {"id":…,"follower":A,"followee":B} gives B a follower; removing it takes it away.
//   followers:count,user:U                       -> {"user":"U","followers":N}
#pragma once

#include <memory>
#include <string>

#include <shardkit/cqrs/projection.h>

namespace microblog {

std::unique_ptr<shardkit::cqrs::Projection> MakeEntriesPerUserProjection(
    std::string kind = "entry", std::string user_field = "user");
std::unique_ptr<shardkit::cqrs::Projection> MakeSearchIndexProjection(
    std::string kind = "entry", std::string text_field = "text");
std::unique_ptr<shardkit::cqrs::Projection> MakeFollowerCountProjection(
    std::string kind = "follow", std::string follower_field = "follower",
    std::string followee_field = "followee");

// Registers them as the projection types microblog.entries-per-user (settings: kind, user_field),
// microblog.search-index (kind, text_field) and microblog.follower-count (kind, follower_field,
// followee_field), for `type = "projection"` services (shardkit/services/projection_types.h).
// Idempotent; RegisterMicroblogServices calls it.
void RegisterMicroblogProjections();

}  // namespace microblog
