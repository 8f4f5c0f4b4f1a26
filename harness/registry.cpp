#include "harness/registry.h"

#include <algorithm>
#include <map>

namespace znslab::harness {
namespace {
// Function-local statics: safe under any static-initialisation order.
std::map<std::string, Command, std::less<>>& commands() {
  static std::map<std::string, Command, std::less<>> m;
  return m;
}
std::map<std::string, WorkloadInfo, std::less<>>& workloads() {
  static std::map<std::string, WorkloadInfo, std::less<>> m;
  return m;
}
}  // namespace

void register_command(Command c) {
  std::string name = c.name;
  commands()[name] = std::move(c);
}

const Command* find_command(std::string_view name) {
  auto it = commands().find(name);
  return it == commands().end() ? nullptr : &it->second;
}

std::vector<const Command*> all_commands() {
  std::vector<const Command*> v;
  for (auto& [_, c] : commands()) v.push_back(&c);
  return v;
}

void register_workload(WorkloadInfo w) {
  std::string name = w.name;
  workloads()[name] = std::move(w);
}

const WorkloadInfo* find_workload(std::string_view name) {
  auto it = workloads().find(name);
  return it == workloads().end() ? nullptr : &it->second;
}

std::vector<const WorkloadInfo*> all_workloads() {
  std::vector<const WorkloadInfo*> v;
  for (auto& [_, w] : workloads()) v.push_back(&w);
  return v;
}

}  // namespace znslab::harness
