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

SCOPE_HEAD = re.compile(r"\b(namespace|class|struct|union|enum)\b")
EXTERN_C = re.compile(r'^\s*extern\s*"C"')


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
        elif c == "R" and text.startswith('R"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            open_paren = text.find("(", i + 2)
            delim = text[i + 2:open_paren]
            end = text.find(")" + delim + '"', open_paren)
            j = n if end < 0 else end + len(delim) + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c in "\"'":
            if c == "'" and i > 0 and text[i - 1].isalnum() and text[i + 1:i + 2].isalnum():
                out.append(c)  # a digit separator: 1'000'000
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


def cpp_functions(text):
    """Yields (first_line, last_line) of every outermost function body in C++ source text."""
    code = strip_cpp(text)
    stack = []  # entries: "scope", "function", "block"
    head_start = 0  # offset after the previous ; { or }
    function_start_line = 0
    for i, c in enumerate(code):
        if c == ";":
            head_start = i + 1
        elif c == "{":
            head = code[head_start:i]
            if "function" in stack:
                stack.append("block")
            elif SCOPE_HEAD.search(head) and "(" not in head.split("=")[0] or EXTERN_C.search(head):
                stack.append("scope")
            elif re.search(r"\)\s*(const|noexcept|override|final|mutable|->[^()]*|\s)*$", head) or re.search(
                    r"\)\s*:\s*[\w:]+\s*[({]", head) or re.search(r"\)\s*:.*[)}]\s*$", head, re.S):
                stack.append("function")
                first = head_start + (len(head) - len(head.lstrip()))
                function_start_line = code.count("\n", 0, first) + 1
            else:
                stack.append("block")
            head_start = i + 1
        elif c == "}":
            kind = stack.pop() if stack else "block"
            if kind == "function":
                yield function_start_line, code.count("\n", 0, i) + 1
            head_start = i + 1


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
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args()
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
