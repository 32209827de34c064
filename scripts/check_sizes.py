#!/usr/bin/env python3
"""Checks the project's size habits: no source file over 400 lines, no function over 80 lines.

    scripts/check_sizes.py [--max-file N] [--max-function N] [--report N] [FILE...]

Without FILEs it checks every C++ (.h, .cpp) and Python (.py) file git tracks. A function is
measured from the line of its signature's first token to its closing brace (C++) or from its
`def` to its last line (Python, by the ast module). Lambdas and local classes count towards the
function that holds them. C++ is read on a token level: comments, string and character literals
(raw strings included) are skipped, and a brace opens a function body when the text before it,
back to the previous `;`, `{` or `}`, has a parameter list and is not a namespace, class, struct,
enum or union head.

Exit codes: 0 within the limits, 1 over them (each offender listed as file:line with its size and
the fix), 2 usage error.
"""
import argparse
import ast
import re
import subprocess
import sys
from pathlib import Path

SCOPE_HEAD = re.compile(r"\b(namespace|class|struct|union|enum|extern)\b")
# The end of a function head: ") const", ") noexcept(...)", ") &&", ") -> T", ") override", ...
FUNCTION_END = re.compile(
    r"\)\s*(const|volatile|noexcept(\s*\([^()]*\))?|override|final|mutable|&&?|->[^;{}]*|"
    r"\[\[[^\]]*\]\]|requires[^;{}]*|try|\s)*$")
# A constructor's member-initialiser list: ") : member(" or ") noexcept : member{".
CTOR_INIT = re.compile(r"\)\s*(noexcept\s*)?:(?!:)")
RAW_PREFIXES = ("", "u8", "u", "U", "L")


def identifier_before(text, i):
    """The run of [A-Za-z0-9_] that ends just before text[i]."""
    j = i
    while j > 0 and (text[j - 1].isalnum() or text[j - 1] == "_"):
        j -= 1
    return text[j:i]


def without_templates(head):
    """`head` with the contents of <...> removed ("template <class T = void>" hides its keyword)."""
    out, depth = [], 0
    for c in head:
        if c == "<":
            depth += 1
        elif c == ">" and depth:
            depth -= 1
        elif depth == 0:
            out.append(c)
    return "".join(out)


def strip_cpp(text):
    """Returns text with comments and literals replaced by spaces (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "R" and text.startswith('R"', i) and identifier_before(text, i) in RAW_PREFIXES:
            open_paren = text.find("(", i + 2)
            delim = text[i + 2:open_paren]
            end = text.find(")" + delim + '"', open_paren)
            j = n if end < 0 else end + len(delim) + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c in "\"'":
            token = identifier_before(text, i)
            if c == "'" and token[:1].isdigit() and text[i + 1:i + 2].isalnum():
                out.append(c)  # a digit separator: 1'000'000 (not u8'a' or L'a')
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + " " * (j - i - 2) + c if j - i >= 2 else text[i:j])
            i = j
        elif c == "#" and (i == 0 or text[i - 1] == "\n" or text[:i].rsplit("\n", 1)[-1].strip() == ""):
            # A preprocessor line (with its continuations) holds no braces that matter.
            j = i
            while True:
                k = text.find("\n", j)
                if k < 0:
                    k = n
                    break
                if text[k - 1] != "\\":
                    break
                j = k + 1
            out.append(re.sub(r"[^\n]", " ", text[i:k]))
            i = k
        else:
            out.append(c)
            i += 1
    return "".join(out)


def classify(head):
    """'function', 'scope' or 'block' for the text before a '{' outside any function."""
    if FUNCTION_END.search(head) or CTOR_INIT.search(head):
        return "function"
    if SCOPE_HEAD.search(without_templates(head)):
        return "scope"
    return "block"


def cpp_functions(text):
    """Yields (first_line, last_line) of every outermost function body in C++ source text."""
    code = strip_cpp(text)
    stack = []  # entries: "scope", "function", "block", "init" (a member's {initialiser})
    head_start = 0  # offset after the previous ; { or } that ended a head
    function_start_line = 0
    for i, c in enumerate(code):
        if c == ";":
            head_start = i + 1
        elif c == "{":
            head = code[head_start:i]
            if "function" in stack:
                stack.append("block")
                head_start = i + 1
            elif CTOR_INIT.search(head) and identifier_before(code, len(head.rstrip()) + head_start):
                stack.append("init")  # ") : a_{x}, b_{y} {": the head goes on after this brace
            else:
                kind = classify(head)
                stack.append(kind)
                if kind == "function":
                    first = head_start + (len(head) - len(head.lstrip()))
                    function_start_line = code.count("\n", 0, first) + 1
                head_start = i + 1
        elif c == "}":
            kind = stack.pop() if stack else "block"
            if kind == "function":
                yield function_start_line, code.count("\n", 0, i) + 1
            if kind != "init":
                head_start = i + 1


SELF_TEST = [
    # (source, expected (first, last) lines of each function)
    ("int f(int x) {\n  if (x) {\n    return 1;\n  }\n  return 0;\n}\n", [(1, 6)]),
    ("namespace a {\nstruct S {\n  int g() const {\n    return 1;\n  }\n};\n}\n", [(3, 5)]),
    ("A::A(int x) : a_{x}, b_(x) {\n  Go();\n  Go();\n}\n", [(1, 4)]),
    ("A::A(int x)\n    : a_(x), b_{x} {\n  Go();\n}\n", [(1, 4)]),
    ("template <typename T, class = void>\nT f(T t) {\n  return t;\n}\n", [(1, 4)]),
    ("int S::f() && {\n  return 1;\n}\nauto g() -> int {\n  return 2;\n}\n", [(1, 3), (4, 6)]),
    ('extern "C" {\nint h() {\n  return u8\'a\' + 1\'000;\n}\n}\n', [(2, 4)]),
    ('const char* s = R"x({ not a brace })x";\nvoid k() {\n  auto l = [] { return 1; };\n}\n',
     [(2, 4)]),
    ("const std::vector<int> kTable = {\n  1,\n  2,\n};\nTEST(A, B) {\n  Run();\n}\n",
     [(5, 7)]),
]


def self_test():
    """Checks the C++ reader on SELF_TEST; returns the failures as text lines."""
    failures = []
    for source, expected in SELF_TEST:
        got = list(cpp_functions(source))
        if got != expected:
            failures.append(f"check_sizes self-test: expected {expected}, got {got} for:\n{source}")
    return failures


def python_functions(text, path):
    try:
        tree = ast.parse(text, filename=str(path))
    except SyntaxError:
        return
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            yield first, node.end_lineno, node.name


def tracked_files(root):
    listing = subprocess.run(["git", "-C", str(root), "ls-files", "*.h", "*.cpp", "*.py"],
                             capture_output=True, text=True, check=True).stdout
    return [root / line for line in listing.splitlines() if line]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-file", type=int, default=400)
    parser.add_argument("--max-function", type=int, default=80)
    parser.add_argument("--report", type=int, default=0, metavar="N",
                        help="also print the N longest functions and files")
    parser.add_argument("--allow", type=Path, metavar="FILE",
                        help="paths (one per line, # comments) still being split: reported, not failed")
    parser.add_argument("--self-test", action="store_true", help="check the C++ reader and exit")
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args()
    failures = self_test()
    if failures or args.self_test:
        print("\n".join(failures) or "check_sizes self-test: all cases measured as expected")
        return 1 if failures else 0
    root = Path(__file__).resolve().parent.parent
    files = args.files or tracked_files(root)
    allowed = set()
    if args.allow:
        for line in args.allow.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                allowed.add(line)
    problems, functions, sizes = [], [], []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        name = path.resolve().relative_to(root) if path.resolve().is_relative_to(root) else path
        lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        sizes.append((lines, str(name)))
        if lines > args.max_file:
            problems.append(f"{name}:1: the file has {lines} lines (at most {args.max_file}); "
                            "split it by concept")
        if path.suffix == ".py":
            found = ((a, b, f) for a, b, f in python_functions(text, path))
        else:
            found = ((a, b, None) for a, b in cpp_functions(text))
        for first, last, fname in found:
            length = last - first + 1
            label = fname or text.splitlines()[first - 1].strip()[:60]
            functions.append((length, f"{name}:{first}", label))
            if length > args.max_function:
                problems.append(f"{name}:{first}: '{label}' is {length} lines (at most "
                                f"{args.max_function}); move its parts into named functions")
    waived = [p for p in problems if p.split(":", 1)[0] in allowed]
    problems = [p for p in problems if p.split(":", 1)[0] not in allowed]
    for line in waived:
        print("still to split: " + line)
    for line in problems:
        print(line)
    if args.report:
        print(f"longest functions:")
        for length, where, label in sorted(functions, reverse=True)[:args.report]:
            print(f"  {length:5d}  {where}  {label}")
        print(f"longest files:")
        for lines, name in sorted(sizes, reverse=True)[:args.report]:
            print(f"  {lines:5d}  {name}")
    if problems:
        print(f"check_sizes: {len(problems)} place(s) over the limits", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
