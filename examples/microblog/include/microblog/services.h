// The microblog case study of *The Tao of Microservices* (docs/microblog.md), as shardkit services.
// Each is a Handler that knows only messages: where its peers run is the routing of the node that
// hosts it.
//
//   post       post:entry      user, text          saves store:save,kind:entry, then sends
//                                                  info:entry (ent) and answers {"ent":{…}}
//   index      info:entry      ent                 turns it into search:insert (the book's choice:
//                                                  post does not know the index exists)
//              search:insert   id, user, text      indexes the words of text -> {"id","terms"}
//              search:query    query [limit]       entries holding every word, newest first
//                                                  -> {"items":[{id,user,text}],"count":N}
//   follow     follow:user     user, target        user follows target (store:save,kind:follow)
//              follow:list     kind:followers|following, user  -> {"users":[…]}
//   timeline   timeline:insert user, ent           one row of user's timeline (store:save,
//                                                  kind:timeline; sharded by user)
//              timeline:list   user [limit]        newest first -> {"items":[…]}
//   fanout     info:entry      ent                 follow:list,kind:followers of the author, then
//                                                  timeline:insert for the author and each follower
//   broadcast  (any pattern)                       forwards the message to every URL of `to` and
//                                                  answers when all did: {"delivered":N}
//
// Errors: `invalid` naming the field for bad input (nothing is written); errors of the messages a
// service sends are answered as they came, with the service named in the message.
//
// Thread-safety: every handler may be called from any thread.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <shardkit/message/handler.h>

namespace microblog {

struct Limits {
  size_t max_text_bytes = 280;
  int default_page = 20;
  int max_page = 200;
  int max_followers = 10'000;  // follow:list answers at most this many users
};

std::shared_ptr<shardkit::Handler> MakePostService(Limits limits = {});
std::shared_ptr<shardkit::Handler> MakeIndexService(Limits limits = {});
std::shared_ptr<shardkit::Handler> MakeFollowService(Limits limits = {});
std::shared_ptr<shardkit::Handler> MakeTimelineService(Limits limits = {});
std::shared_ptr<shardkit::Handler> MakeFanoutService();

// broadcast: each message goes to every subscriber (in parallel); the answer comes when all
// answered: {"delivered":N}, or `unavailable` naming the first subscriber that failed.
struct Subscriber {
  std::string name;  // for errors, e.g. its URL
  std::shared_ptr<shardkit::Handler> handler;
};
std::shared_ptr<shardkit::Handler> MakeBroadcastService(std::vector<Subscriber> subscribers);

// Registers the node service types microblog.post, microblog.index, microblog.follow,
// microblog.timeline, microblog.fanout and microblog.broadcast (settings: docs/configuration.md),
// and the microblog's projection types (projections.h). Idempotent. The `shardkit-microblog`
// binary calls it, so `shardkit-microblog serve` hosts these types.
void RegisterMicroblogServices();

}  // namespace microblog
