#include "client/postfix/reply_memo.h"

#include <algorithm>

namespace mxpolicy::postfix {

const std::string* ReplyMemo::Find(absl::string_view request,
                                   absl::Time now) const {
  auto it = entries_.find(request);
  if (it == entries_.end() || now >= it->second.fresh_until) return nullptr;
  return &it->second.encoded_reply;
}

void ReplyMemo::Put(absl::string_view request, absl::string_view encoded_reply,
                    absl::Time fresh_until, absl::Time now) {
  if (fresh_until <= now || request.size() > kMaxRequestBytes) return;
  const size_t cost = request.size() + encoded_reply.size();
  auto it = entries_.find(request);
  if (it != entries_.end()) {  // a newer answer for the same request
    bytes_ -= request.size() + it->second.encoded_reply.size();
    entries_.erase(it);
  }
  auto full = [&] {
    return entries_.size() >= max_entries_ || bytes_ + cost > max_bytes_;
  };
  if (full() && now >= next_expiry_ && now >= last_sweep_ + kSweepInterval) {
    Sweep(now);
  }
  if (full()) return;
  entries_.emplace(std::string(request),
                   Entry{std::string(encoded_reply), fresh_until});
  bytes_ += cost;
  next_expiry_ = std::min(next_expiry_, fresh_until);
}

void ReplyMemo::Sweep(absl::Time now) {
  last_sweep_ = now;
  next_expiry_ = absl::InfiniteFuture();
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (now >= it->second.fresh_until) {
      bytes_ -= it->first.size() + it->second.encoded_reply.size();
      entries_.erase(it++);
    } else {
      next_expiry_ = std::min(next_expiry_, it->second.fresh_until);
      ++it;
    }
  }
}

}  // namespace mxpolicy::postfix
