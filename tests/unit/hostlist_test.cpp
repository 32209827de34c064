#include "runner/hostlist.h"

#include <gtest/gtest.h>

#include <climits>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "common/errors.h"

namespace runner {
namespace {

using Hosts = std::vector<std::string>;

struct GoodHostlist {
  std::string expr;
  Hosts want;
};

struct BadCase {
  std::string expr;
  size_t column;
  std::string message;  // exact, as users read it
};

// Runs `parse` and checks it throws a ParseError with exactly this column and message.
template <typename Parse>
void ExpectParseError(const BadCase& c, Parse parse) {
  try {
    static_cast<void>(parse(c.expr));
    ADD_FAILURE() << "no error; expected: " << c.message;
  } catch (const common::ParseError& e) {
    EXPECT_EQ(e.column(), c.column);
    EXPECT_EQ(std::string(e.what()), c.message);
  }
}

TEST(ExpandHostlistTest, GoodLists) {
  const std::vector<GoodHostlist> cases = {
      {"n1", {"n1"}},
      {"x", {"x"}},
      {"a,b,c", {"a", "b", "c"}},
      {"n[1-3]", {"n1", "n2", "n3"}},
      {"n[09-11]", {"n09", "n10", "n11"}},
      {"n[8-10]", {"n8", "n9", "n10"}},
      {"n[08-10]", {"n08", "n09", "n10"}},
      {"n[98-101]", {"n98", "n99", "n100", "n101"}},
      {"n[098-101]", {"n098", "n099", "n100", "n101"}},
      {"n[000-002]", {"n000", "n001", "n002"}},
      {"n[1-3,5,7-8]", {"n1", "n2", "n3", "n5", "n7", "n8"}},
      {"n[0001-0002,9]", {"n0001", "n0002", "n9"}},
      {"n[01,2,003]", {"n01", "n2", "n003"}},
      {"n[5]", {"n5"}},
      {"n[05]", {"n05"}},
      {"n[0]", {"n0"}},
      {"n[0-0]", {"n0"}},
      {"n[10-10]", {"n10"}},
      {"n[3,1,2]", {"n3", "n1", "n2"}},
      {"n[1,1]", {"n1", "n1"}},
      {"n[1-2],n[1-2]", {"n1", "n2", "n1", "n2"}},
      {"rack[0-1]-blade[0-1]", {"rack0-blade0", "rack0-blade1", "rack1-blade0", "rack1-blade1"}},
      {"x[1-2]y[3-4]z", {"x1y3z", "x1y4z", "x2y3z", "x2y4z"}},
      {"a[0-1][0-1][0-1]", {"a000", "a001", "a010", "a011", "a100", "a101", "a110", "a111"}},
      {"[1][2]", {"12"}},
      {"[1-3]", {"1", "2", "3"}},
      {"n[1-3]x", {"n1x", "n2x", "n3x"}},
      {"node[1-2]-eth0", {"node1-eth0", "node2-eth0"}},
      {"cpu-a1", {"cpu-a1"}},
      {"node-1.cluster", {"node-1.cluster"}},
      {"a_b.c-d", {"a_b.c-d"}},
      {"A[1-2]B", {"A1B", "A2B"}},
      {"n01,n02", {"n01", "n02"}},
      {"n[9-10],m[1]", {"n9", "n10", "m1"}},
      {"gpu[001-004,010],cpu-a[1-2]",
       {"gpu001", "gpu002", "gpu003", "gpu004", "gpu010", "cpu-a1", "cpu-a2"}},
      {"n[1-2].ib,login", {"n1.ib", "n2.ib", "login"}},
      {"n[18446744073709551614-18446744073709551615]",
       {"n18446744073709551614", "n18446744073709551615"}},
      {"n" + std::string(254, 'a'), {"n" + std::string(254, 'a')}},
      {std::string(252, 'a') + "[8-10]",
       {std::string(252, 'a') + "8", std::string(252, 'a') + "9", std::string(252, 'a') + "10"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE("hostlist: \"" + c.expr + "\"");
    EXPECT_EQ(ExpandHostlist(c.expr), c.want);
  }
}

TEST(ExpandHostlistTest, BadLists) {
  const std::string max = "18446744073709551615";
  const std::vector<BadCase> cases = {
      {"", 1, "empty hostlist: expected host names like n[1-4],login1 (column 1)"},
      {"a,,b", 3, "empty item: expected a host name (column 3)"},
      {",a", 1, "empty item: expected a host name (column 1)"},
      {"a,", 3, "empty item: expected a host name (column 3)"},
      {"n[1-3],", 8, "empty item: expected a host name (column 8)"},
      {"n[1-3", 2, "unbalanced '[': no matching ']' (column 2)"},
      {"n[1-3],m[", 9, "unbalanced '[': no matching ']' (column 9)"},
      {"n[1-3,a", 2, "unbalanced '[': no matching ']' (column 2)"},
      {"n1-3]", 5, "unbalanced ']': no matching '[' (column 5)"},
      {"]", 1, "unbalanced ']': no matching '[' (column 1)"},
      {"n[1-2]]", 7, "unbalanced ']': no matching '[' (column 7)"},
      {"a,n[1-3],b]", 11, "unbalanced ']': no matching '[' (column 11)"},
      {"n[1[2]]", 4, "nested '[': expected ']' to close the '[' at column 2 first (column 4)"},
      {"n[]", 3, "empty brackets '[]': expected a number or range like 1-4 (column 3)"},
      {"n[1,]", 5, "empty range element: expected a number or range like 1-4 (column 5)"},
      {"n[,1]", 3, "empty range element: expected a number or range like 1-4 (column 3)"},
      {"n[1,,2]", 5, "empty range element: expected a number or range like 1-4 (column 5)"},
      {"n[a-b]", 3, "unexpected 'a' in range: expected a digit (column 3)"},
      {"n[1-b]", 5, "unexpected 'b' in range: expected a digit (column 5)"},
      {"n[-3]", 3, "unexpected '-' in range: expected a digit (column 3)"},
      {"n[1--3]", 5, "unexpected '-' in range: expected a digit (column 5)"},
      {"n[1-]", 5, "incomplete range: expected a number after '-' (column 5)"},
      {"n[1-,2]", 5, "incomplete range: expected a number after '-' (column 5)"},
      {"n[1-2-3]", 6, "unexpected '-' in range: expected ',' or ']' (column 6)"},
      {"n[1x]", 4, "unexpected 'x' in range: expected a digit, '-', ',' or ']' (column 4)"},
      {"n[5-3]", 3, "reversed range 5-3: the first number must not exceed the second (column 3)"},
      {"n[1,10-09]", 5,
       "reversed range 10-09: the first number must not exceed the second (column 5)"},
      {"n[18446744073709551616]", 3,
       "number too large in range: the limit is " + max + " (column 3)"},
      {"n[1-99999999999999999999]", 5,
       "number too large in range: the limit is " + max + " (column 5)"},
      {"n[0-999999999]", 1,
       "hostlist expands to 1000000000 hosts, more than the limit of 65536 (column 1)"},
      {"n[0-65535],x", 12,
       "hostlist expands to 65537 hosts, more than the limit of 65536 (column 12)"},
      {"a[0-99999999999][0-99999999999]", 1,
       "hostlist expands to at least " + max + " hosts, more than the limit of 65536 (column 1)"},
      {"n[0-" + max + "]", 1,
       "hostlist expands to at least " + max + " hosts, more than the limit of 65536 (column 1)"},
      {std::string(253, 'a') + "[8-100]", 1,
       "host name of 256 characters, more than the limit of 255 (column 1)"},
      {"a,n[" + std::string(300, '0') + "1]", 3,
       "host name of 302 characters, more than the limit of 255 (column 3)"},
      {"a b", 2, "unexpected ' ': whitespace is not allowed in a hostlist (column 2)"},
      {" a", 1, "unexpected ' ': whitespace is not allowed in a hostlist (column 1)"},
      {"a\t", 2, "unexpected '\\x09': whitespace is not allowed in a hostlist (column 2)"},
      {"a\n", 2, "unexpected '\\x0a': whitespace is not allowed in a hostlist (column 2)"},
      {"n[1-2 ]", 6, "unexpected ' ': whitespace is not allowed in a hostlist (column 6)"},
      {"n@1", 2,
       "unexpected '@' in host name: expected letters, digits, '-', '.', '_' or '[' (column 2)"},
      {"n/1", 2,
       "unexpected '/' in host name: expected letters, digits, '-', '.', '_' or '[' (column 2)"},
      {"n\xc3\xa9", 2,
       "unexpected '\\xc3' in host name: expected letters, digits, '-', '.', '_' or '[' "
       "(column 2)"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE("hostlist: \"" + c.expr + "\"");
    ExpectParseError(c, [](const std::string& e) { return ExpandHostlist(e); });
  }
}

TEST(ExpandHostlistTest, MaxHostsIsInclusive) {
  EXPECT_EQ(ExpandHostlist("n[1-3]", 3).size(), 3U);
  EXPECT_EQ(ExpandHostlist("n[0-65535]").size(), 65536U);
  ExpectParseError(
      {"n[1-3],m", 8, "hostlist expands to 4 hosts, more than the limit of 3 (column 8)"},
      [](const std::string& e) { return ExpandHostlist(e, 3); });
  ExpectParseError({"a", 1, "hostlist expands to 1 host, more than the limit of 0 (column 1)"},
                   [](const std::string& e) { return ExpandHostlist(e, 0); });
}

TEST(CompressHostlistTest, Output) {
  const std::vector<std::pair<Hosts, std::string>> cases = {
      {{}, ""},
      {{"n1"}, "n1"},
      {{"login"}, "login"},
      {{"n1", "n2", "n3", "n7"}, "n[1-3,7]"},
      {{"n09", "n10", "n11"}, "n[09-11]"},
      {{"n8", "n9", "n10"}, "n[8-10]"},
      {{"n99", "n100"}, "n[99-100]"},
      {{"n099", "n100"}, "n[099-100]"},
      {{"n0099", "n100"}, "n[0099,100]"},
      {{"n08", "n9"}, "n[08,9]"},
      {{"n3", "n1", "n2"}, "n[3,1-2]"},
      {{"n1", "n1"}, "n[1,1]"},
      {{"login", "n1", "n2"}, "login,n[1-2]"},
      {{"n1", "m1", "n2"}, "n1,m1,n2"},
      {{"n1x", "n2x", "n3y"}, "n[1-2]x,n3y"},
      {{"1", "2"}, "[1-2]"},
      {{"gpu001", "gpu002", "gpu003", "gpu004", "gpu010", "cpu-a1", "cpu-a2"},
       "gpu[001-004,010],cpu-a[1-2]"},
      {{"rack0-blade0", "rack0-blade1", "rack1-blade0", "rack1-blade1"},
       "rack0-blade[0-1],rack1-blade[0-1]"},
      {{"n18446744073709551615", "n18446744073709551616"},
       "n18446744073709551615,n18446744073709551616"},
      {{"bad host", "n1"}, "bad host,n1"},
  };
  for (const auto& [hosts, want] : cases) {
    SCOPED_TRACE("compressing: \"" + want + "\"");
    EXPECT_EQ(CompressHostlist(hosts), want);
  }
}

TEST(CompressHostlistTest, RoundTripsExpandedLists) {
  const std::vector<std::string> exprs = {
      "n1",
      "a,b,c",
      "n[1-3,5,7-8]",
      "n[8-10]",
      "n[08-10]",
      "n[098-101]",
      "n[0001-0002,9]",
      "n[3,1,2]",
      "n[1,1,1]",
      "n[1-2],n[1-2]",
      "rack[0-1]-blade[0-3]",
      "a[0-1][0-1][0-1]",
      "x[1-2]y[3-4]z",
      "[1-3]",
      "n[1-3]x,n[4-6]y",
      "gpu[001-004,010],cpu-a[1-2],login",
      "node-1.cluster,node-2.cluster",
      "n[9-11],n[09-11],n[009-011]",
      "n[0-65535]",
      "n[18446744073709551610-18446744073709551615]",
      "n01,n1,n001,n2,n02",
  };
  for (const auto& expr : exprs) {
    SCOPED_TRACE("hostlist: \"" + expr + "\"");
    const Hosts hosts = ExpandHostlist(expr);
    const std::string compressed = CompressHostlist(hosts);
    SCOPED_TRACE("compressed: \"" + compressed + "\"");
    EXPECT_EQ(ExpandHostlist(compressed), hosts);
  }
}

TEST(CompressHostlistTest, RoundTripsRandomLists) {
  std::mt19937 rng(20240611);  // fixed: a failure must reproduce
  const std::vector<std::string> prefixes = {"n", "gpu", "rack1-n", "", "a.b_"};
  const std::vector<std::string> suffixes = {"", "x", "-ib", ".c1"};
  for (int round = 0; round < 500; ++round) {
    Hosts hosts;
    const int size = static_cast<int>(rng() % 40);
    for (int i = 0; i < size; ++i) {
      std::string number = std::to_string(rng() % 120);
      if (rng() % 4 == 0) number.insert(0, rng() % 3 + 1, '0');
      if (rng() % 10 == 0) number.clear();  // a name without a number
      const std::string name =
          prefixes[rng() % prefixes.size()] + number + suffixes[rng() % suffixes.size()];
      if (!name.empty()) hosts.push_back(name);
      if (rng() % 3 == 0 && !hosts.empty()) hosts.push_back(hosts.back());
    }
    const std::string compressed = CompressHostlist(hosts);
    SCOPED_TRACE("round " + std::to_string(round) + ", compressed: \"" + compressed + "\"");
    if (hosts.empty()) {
      EXPECT_EQ(compressed, "");
    } else {
      EXPECT_EQ(ExpandHostlist(compressed), hosts);
    }
  }
}

TEST(ParseTasksPerNodeTest, GoodCounts) {
  const std::vector<std::pair<std::string, std::vector<int>>> cases = {
      {"4", {4}},
      {"0", {0}},
      {"007", {7}},
      {"1,2,3", {1, 2, 3}},
      {"4(x2),2", {4, 4, 2}},
      {"0(x3)", {0, 0, 0}},
      {"8(x1)", {8}},
      {"16(x4),8(x2)", {16, 16, 16, 16, 8, 8}},
      {"2,1(x2),2", {2, 1, 1, 2}},
      {"2147483647", {INT_MAX}},
      {"1(x65536)", std::vector<int>(65536, 1)},
  };
  for (const auto& [expr, want] : cases) {
    SCOPED_TRACE("tasks per node: \"" + expr + "\"");
    EXPECT_EQ(ParseTasksPerNode(expr), want);
  }
}

TEST(ParseTasksPerNodeTest, BadCounts) {
  const std::string max = "18446744073709551615";
  const std::vector<BadCase> cases = {
      {"", 1, "empty task counts: expected counts like 4(x2),2 (column 1)"},
      {"4,,2", 3, "empty item: expected a task count (column 3)"},
      {",4", 1, "empty item: expected a task count (column 1)"},
      {"4,", 3, "empty item: expected a task count (column 3)"},
      {"a", 1, "unexpected 'a' in task count: expected a digit (column 1)"},
      {"-1", 1, "unexpected '-' in task count: expected a digit (column 1)"},
      {"4x2", 2, "unexpected 'x' after task count: expected ',' or a repeat like (x2) (column 2)"},
      {"4(", 3, "unexpected end of input after '(': expected 'x' as in (x2) (column 3)"},
      {"4(2)", 3, "unexpected '2' after '(': expected 'x' as in (x2) (column 3)"},
      {"4(x", 4, "unexpected end of input after 'x': expected a repeat count (digits) (column 4)"},
      {"4(x)", 4, "unexpected ')' after 'x': expected a repeat count (digits) (column 4)"},
      {"4(x0)", 4, "repeat count 0: it must be at least 1 (column 4)"},
      {"4(x2", 5,
       "unexpected end of input in repeat count: expected a digit or ')' to close the '(' at "
       "column 2 (column 5)"},
      {"4(x2]", 5,
       "unexpected ']' in repeat count: expected a digit or ')' to close the '(' at column 2 "
       "(column 5)"},
      {"4(x2)3", 6, "unexpected '3' after ')': expected ',' (column 6)"},
      {"2147483648", 1, "task count too large: the limit is 2147483647 (column 1)"},
      {"1,99999999999999999999999", 3, "task count too large: the limit is 2147483647 (column 3)"},
      {"4(x99999999999999999999999)", 4,
       "repeat count too large: the limit is " + max + " (column 4)"},
      {"4(x65537)", 1,
       "task counts expand to 65537 nodes, more than the limit of 65536 (column 1)"},
      {"1,4(x65536)", 3,
       "task counts expand to 65537 nodes, more than the limit of 65536 (column 3)"},
      {"4(x" + max + "),1", 1,
       "task counts expand to at least " + max + " nodes, more than the limit of 65536 (column 1)"},
      {"4 ,2", 2, "unexpected ' ': whitespace is not allowed in task counts (column 2)"},
      {"4(x2),2\n", 8, "unexpected '\\x0a': whitespace is not allowed in task counts (column 8)"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE("tasks per node: \"" + c.expr + "\"");
    ExpectParseError(c, [](const std::string& e) { return ParseTasksPerNode(e); });
  }
}

TEST(ParseTasksPerNodeTest, MaxNodesIsInclusive) {
  EXPECT_EQ(ParseTasksPerNode("1(x2)", 2), (std::vector<int>{1, 1}));
  ExpectParseError(
      {"1(x2),3", 7, "task counts expand to 3 nodes, more than the limit of 2 (column 7)"},
      [](const std::string& e) { return ParseTasksPerNode(e, 2); });
}

}  // namespace
}  // namespace runner
