// Counter declarations: each allocator/device declares its counters ONCE,
// as an X-macro list of rows
//
//   X(type, field, "json_key", "unit", "meaning")
//
// (type: the C++ type of the struct member; field: the member name;
// json_key: its key in every JSON document, usually the field's name; unit:
// "bytes", "count", "ns", "%", ... or "" when dimensionless; meaning: one
// line). From that one list come the struct's members (ZNSLAB_COUNTER_FIELD),
// a table of declarations (counter_decls(), for the result schema and the
// documentation tables of `znslab counters`) and a visitor
// (for_each_counter(), for the JSON export). DESIGN.md "Layering rules":
// "Counters are declared once per allocator/device".
//
// Header-only, no dependencies: every library may use it.
#pragma once

#include <cstdint>
#include <span>
#include <type_traits>

namespace znslab {

// The JSON type of a counter: unsigned integer, signed integer, or real.
enum class CounterType : uint8_t { kUnsigned, kSigned, kReal };

template <class T>
constexpr CounterType counter_type_of() noexcept {
  if constexpr (std::is_floating_point_v<T>) return CounterType::kReal;
  else if constexpr (std::is_signed_v<T>) return CounterType::kSigned;
  else return CounterType::kUnsigned;
}

constexpr const char* counter_type_name(CounterType t) noexcept {
  switch (t) {
    case CounterType::kUnsigned: return "unsigned";
    case CounterType::kSigned: return "integer";
    case CounterType::kReal: return "number";
  }
  return "?";
}

// One row of a counter list.
struct CounterDecl {
  const char* key;      // JSON key
  CounterType type;
  const char* unit;     // "" = dimensionless
  const char* meaning;
};

}  // namespace znslab

// Row expanders for the X-macro lists.
#define ZNSLAB_COUNTER_FIELD(type, field, key, unit, meaning) type field = 0;
#define ZNSLAB_COUNTER_DECL(type, field, key, unit, meaning) \
  ::znslab::CounterDecl{key, ::znslab::counter_type_of<type>(), unit, meaning},
#define ZNSLAB_COUNTER_VISIT(type, field, key, unit, meaning) f(key, s.field);

// Declares, beside struct S whose members come from LIST:
//   std::span<const CounterDecl> counter_decls(const S*)  the rows, in order;
//   void for_each_counter(const S& s, F&& f)              f(key, value) per row.
// Use at namespace scope, after S (found by argument-dependent lookup).
#define ZNSLAB_COUNTER_FUNCTIONS(S, LIST)                                            \
  inline std::span<const ::znslab::CounterDecl> counter_decls(const S*) noexcept {   \
    static constexpr ::znslab::CounterDecl kRows[] = {LIST(ZNSLAB_COUNTER_DECL)};    \
    return kRows;                                                                    \
  }                                                                                  \
  template <class F>                                                                 \
  inline void for_each_counter(const S& s, F&& f) {                                  \
    LIST(ZNSLAB_COUNTER_VISIT)                                                       \
  }
