#include "fanout/detail/pattern_index.hpp"

namespace fanout::detail {

PatternIndex::PatternIndex() : root_(std::make_unique<Node>()) {}
PatternIndex::~PatternIndex() = default;

void PatternIndex::add(const std::shared_ptr<PatternSubscription>& s) {
  const std::string_view p = s->pattern;
  Node* node = root_.get();
  List* list = &node->ends;
  for (std::size_t at = 0; at < p.size();) {
    const auto t = token(p, at);
    at += t.size();
    if (t == "*" && at == p.size()) {
      list = &node->rest;
      break;
    }
    std::unique_ptr<Node>* next = nullptr;
    if (t == "*") {
      next = &node->one;
    } else {
      auto it = node->literal.find(t);
      if (it == node->literal.end()) it = node->literal.emplace(std::string(t), nullptr).first;
      next = &it->second;
    }
    if (!*next) *next = std::make_unique<Node>();
    node = next->get();
    list = &node->ends;
  }
  s->slot = list->size();
  list->push_back(s);
  ++subscriptions_;
}

void PatternIndex::remove(const PatternSubscription& s) {
  // The path down, so nodes left empty can be pruned on the way back (patterns come from clients:
  // a trie that kept every pattern ever seen would grow without bound).
  const std::string_view p = s.pattern;
  std::vector<std::pair<Node*, std::string_view>> path;  // parent and the edge taken from it
  Node* node = root_.get();
  List* list = &node->ends;
  for (std::size_t at = 0; at < p.size();) {
    const auto t = token(p, at);
    at += t.size();
    if (t == "*" && at == p.size()) {
      list = &node->rest;
      break;
    }
    Node* next = nullptr;
    if (t == "*") {
      next = node->one.get();
    } else if (auto it = node->literal.find(t); it != node->literal.end()) {
      next = it->second.get();
    }
    if (!next) return;  // not here
    path.emplace_back(node, t);
    node = next;
    list = &node->ends;
  }
  if (s.slot >= list->size() || (*list)[s.slot].get() != &s) return;
  // Swap-remove: O(1) however many clients share the pattern; the one moved learns its slot.
  (*list)[s.slot] = std::move(list->back());
  (*list)[s.slot]->slot = s.slot;
  list->pop_back();
  --subscriptions_;
  for (auto it = path.rbegin(); it != path.rend() && node->empty(); ++it) {
    auto& [parent, edge] = *it;
    node = parent;
    if (edge == "*")
      parent->one.reset();
    else
      parent->literal.erase(parent->literal.find(edge));
  }
}

}  // namespace fanout::detail
