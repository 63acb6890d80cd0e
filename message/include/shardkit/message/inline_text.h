#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace shardkit {

// Bytes built in place for one use: on the stack up to 96 bytes (almost every key), on the heap
// past that, so a lookup or a point read allocates nothing for its key. The constructor makes
// room for `size` bytes; the caller fills data() and reads them back through view().
class InlineText {
 public:
  explicit InlineText(size_t size) : size_(size) {
    if (size > sizeof inline_) {
      heap_.resize(size);
      data_ = heap_.data();
    }
  }
  InlineText(const InlineText&) = delete;
  InlineText& operator=(const InlineText&) = delete;

  char* data() { return data_; }
  std::string_view view() const { return {data_, size_}; }

 private:
  char inline_[96];
  std::string heap_;
  char* data_ = inline_;
  size_t size_;
};

}  // namespace shardkit
