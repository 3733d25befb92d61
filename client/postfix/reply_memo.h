// ReplyMemo: mxpolicy-postfix's memo of whole socketmap exchanges. It maps
// a request exactly as Postfix sent it ("<mapname> <key>") to the encoded
// reply netstring, for as long as the client library's answer behind that
// reply is fresh (Policy::fresh_until). A repeated request is then answered
// without parsing the key, normalising the domain, copying the policy out
// of the local cache or rendering the reply again: Postfix asks for the
// same few destinations over and over, and this makes their answers cost
// little more than the socket read and write.
//
// The same request bytes always give the same reply for the same answer
// (the reply depends only on the key, the answer and the adapter's fixed
// options), so the memo never changes what Postfix receives; it only skips
// work. Stale answers (service unreachable) and failures are never stored.
#ifndef MXPOLICY_CLIENT_POSTFIX_REPLY_MEMO_H_
#define MXPOLICY_CLIENT_POSTFIX_REPLY_MEMO_H_

#include <cstddef>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace mxpolicy::postfix {

// Contract: not thread-safe (the socketmap server's loop thread owns it);
// no I/O; Find is O(1); Put is O(1) except that a full memo is swept for
// expired entries (O(entries)) when its earliest entry has expired, at
// most once a second. Times are whatever clock the caller uses for both
// `now` and `fresh_until`.
class ReplyMemo {
 public:
  // Requests longer than this are never stored (real keys are domain
  // names; the bound keeps a memo of `max_entries` small).
  static constexpr size_t kMaxRequestBytes = 512;

  // At most `max_entries` entries and `max_bytes` bytes of requests and
  // replies; 0 entries: nothing is ever stored.
  ReplyMemo(size_t max_entries, size_t max_bytes)
      : max_entries_(max_entries), max_bytes_(max_bytes) {}

  // The encoded reply for `request` if its answer is still fresh at `now`.
  // The pointer is valid until the next Put.
  const std::string* Find(absl::string_view request, absl::Time now) const;

  // Remembers `encoded_reply` for `request` until `fresh_until`. Nothing
  // is stored when that is not after `now`, when the request is too long,
  // or when the memo is full and no sweep is due or it freed no room (the
  // request is then simply answered the long way next time).
  void Put(absl::string_view request, absl::string_view encoded_reply,
           absl::Time fresh_until, absl::Time now);

  size_t size() const { return entries_.size(); }
  size_t bytes() const { return bytes_; }

 private:
  struct Entry {
    std::string encoded_reply;
    absl::Time fresh_until;
  };
  static constexpr absl::Duration kSweepInterval = absl::Seconds(1);

  // Drops every entry expired at `now` and notes when the next one
  // expires.
  void Sweep(absl::Time now);

  const size_t max_entries_, max_bytes_;
  size_t bytes_ = 0;
  // The earliest fresh_until of the entries (or earlier): a full memo is
  // not swept before it, nor within kSweepInterval of the last sweep.
  absl::Time next_expiry_ = absl::InfiniteFuture();
  absl::Time last_sweep_ = absl::InfinitePast();
  absl::flat_hash_map<std::string, Entry> entries_;
};

}  // namespace mxpolicy::postfix

#endif  // MXPOLICY_CLIENT_POSTFIX_REPLY_MEMO_H_
