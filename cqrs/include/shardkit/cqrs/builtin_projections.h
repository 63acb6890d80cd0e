// Built-in projections (projection.h). Each reads save/remove events of one kind; ids, users and
// words are stored in keys separated by NUL, so any text is safe in them.
//
// EntitiesProjection(kind): a copy of the entities, so store:load / store:list are served from the
// read model.
//   store:load,kind:K id:I                       -> {"ent":{…}} | not_found
//   store:list,kind:K [q:{field:value,…, limit$, cursor$}]
//                                                -> {"items":[…],"cursor":"…"?}
//   Lists are in id order (byte order); filters are equalities on top-level fields compared as
//   compact JSON text (so 1 and 1.0 differ); sort$, skip$, fields$ answer `invalid`.
//
// EntriesPerUserProjection(kind, user_field): how many entities each user has, and which.
//   entries:user,user:U [limit:N]                -> {"user":"U","count":N,"ids":[…]}
//
// SearchIndexProjection(kind, text_field): the microblog's iteration 1, words -> entity ids. Words
// are runs of ASCII letters and digits (and any non-ASCII bytes), lower-cased.
//   search:query,text:"…" [limit:N]              -> {"ids":[…]}   (entities holding every word)
//
// FollowerCountProjection(kind, follower_field, followee_field): a follow entity
// {"id":…,"follower":A,"followee":B} gives B a follower; removing it takes it away.
//   followers:count,user:U                       -> {"user":"U","followers":N}
//
// Missing or malformed fields in an entity make it count as absent for that projection (no error).
#pragma once

#include <memory>
#include <string>

#include <shardkit/cqrs/projection.h>

namespace shardkit::cqrs {

std::unique_ptr<Projection> MakeEntitiesProjection(std::string kind);
std::unique_ptr<Projection> MakeEntriesPerUserProjection(std::string kind = "entry",
                                                         std::string user_field = "user");
std::unique_ptr<Projection> MakeSearchIndexProjection(std::string kind = "entry",
                                                      std::string text_field = "text");
std::unique_ptr<Projection> MakeFollowerCountProjection(std::string kind = "follow",
                                                        std::string follower_field = "follower",
                                                        std::string followee_field = "followee");

}  // namespace shardkit::cqrs
