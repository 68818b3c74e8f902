#include "config/conf_syntax.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <regex>
#include <utility>

namespace xmatters {

namespace {

// --- the scanner -------------------------------------------------------------
// collectd's scanner is a flex one: at each point the longest match among
// its rules wins, a tie goes to the rule listed first, and a character no
// rule matches is skipped (flex prints it and goes on). The rules, in order:
// white space; comments; "\" + end of line (continues the line); end of
// line; "/", "<", ">"; true|yes|on and false|no|off (lower case only); IPv4
// and IPv6 addresses (strings); numbers (strtod); "quoted strings"; unquoted
// strings [0-9A-Za-z_]+; and a quoted string continued by "\" at the end of a
// line, which carries on over the following lines, their leading white space
// dropped.

enum class Tok { End, Eol, Slash, Open, Close, Bool, Number, Quoted, Unquoted };

struct Token {
  Tok type = Tok::End;
  std::string text;  // unquoted strings, and what an error message shows
  double number = 0;
  bool boolean = false;
  std::size_t line = 1;
};

bool is_white(char c) { return c == ' ' || c == '\t' || c == '\b'; }
bool is_word(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The length of an end of line at i (\n or \r\n), or 0.
std::size_t eol_at(std::string_view s, std::size_t i) {
  if (i < s.size() && s[i] == '\n') return 1;
  if (i + 1 < s.size() && s[i] == '\r' && s[i + 1] == '\n') return 2;
  return 0;
}

// The addresses' patterns, as the scanner's definitions spell them.
const std::regex& ipv4_regex() {
  static const std::regex re(
      "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}"
      "(:(6(5(5(3[0-5]|[0-2][0-9])|[0-4][0-9][0-9])|[0-4][0-9][0-9][0-9])|[1-5][0-9][0-9][0-9][0-9]|[1-9][0-9]?[0-9]?"
      "[0-9]?))?");
  return re;
}

const std::regex& ipv6_regex() {
  static const std::regex re([] {
    const std::string h = "[0-9A-Fa-f]{1,4}";
    const std::string byte = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
    const std::string port =
        "(6(5(5(3[0-5]|[0-2][0-9])|[0-4][0-9][0-9])|[0-4][0-9][0-9][0-9])|[1-5][0-9][0-9][0-9][0-9]|[1-9][0-9]?[0-9]?[0-9]?)";
    const std::string v4 = byte + "\\." + byte + "\\." + byte + "\\." + byte + "(:" + port + ")?";
    const std::string part = "(" + h + ":" + h + "|" + v4 + ")";
    const std::string base = "((" + h + ":){6}" + part + "|::(" + h + ":){5}" + part + "|(" + h + ")?::(" + h +
                             ":){4}" + part + "|((" + h + ":){0,1}" + h + ")?::(" + h + ":){3}" + part + "|((" + h +
                             ":){0,2}" + h + ")?::(" + h + ":){2}" + part + "|((" + h + ":){0,3}" + h + ")?::" + h +
                             ":" + part + "|((" + h + ":){0,4}" + h + ")?::" + part + "|((" + h + ":){0,5}" + h +
                             ")?::" + h + "|((" + h + ":){0,6}" + h + ")?::)";
    return "(" + base + ")|(\\[" + base + "\\](:" + port + ")?)";
  }());
  return re;
}

// The longest prefix of s (of the characters an address can hold) that re
// matches whole; 0 for none.
std::size_t longest_address(std::string_view s, std::size_t i, const std::regex& re) {
  std::size_t run = 0;
  while (i + run < s.size() && run < 64) {
    const char c = s[i + run];
    if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.' || c == '[' || c == ']')) break;
    ++run;
  }
  for (std::size_t n = run; n > 0; --n)
    if (std::regex_match(s.begin() + i, s.begin() + i + n, re)) return n;
  return 0;
}

// The longest of the scanner's number patterns at i: [+-]?[0-9]*\.[0-9]+
// ([eE][+-][0-9]+)?, 0[xX][0-9a-fA-F]+, 0[0-7]+, [+-]?[0-9]+.
std::size_t number_length(std::string_view s, std::size_t i) {
  std::size_t best = 0;
  const auto digits = [&](std::size_t j) {
    while (j < s.size() && is_digit(s[j])) ++j;
    return j;
  };
  std::size_t j = i;
  if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
  const std::size_t int_end = digits(j);
  if (int_end > j) best = std::max(best, int_end - i);  // decimal
  if (int_end < s.size() && s[int_end] == '.') {         // float
    const std::size_t frac_end = digits(int_end + 1);
    if (frac_end > int_end + 1) {
      std::size_t end = frac_end;
      if (end + 1 < s.size() && (s[end] == 'e' || s[end] == 'E') && (s[end + 1] == '+' || s[end + 1] == '-')) {
        const std::size_t exp_end = digits(end + 2);
        if (exp_end > end + 2) end = exp_end;
      }
      best = std::max(best, end - i);
    }
  }
  if (s[i] == '0' && i + 1 < s.size()) {
    if (s[i + 1] == 'x' || s[i + 1] == 'X') {  // hexadecimal
      std::size_t k = i + 2;
      while (k < s.size() && std::isxdigit(static_cast<unsigned char>(s[k]))) ++k;
      if (k > i + 2) best = std::max(best, k - i);
    } else {  // octal
      std::size_t k = i + 1;
      while (k < s.size() && s[k] >= '0' && s[k] <= '7') ++k;
      if (k > i + 1) best = std::max(best, k - i);
    }
  }
  return best;
}

// The inside of a quoted string from i on: characters other than '"' and
// '\', or '\' and any character but a newline. Returns the length of the
// longest match ending with '"' (close) and of the longest ending with '\'
// + end of line (cont); 0 for none. A "\\\r\n" can be both an escaped
// '\r' and a continuation: both are tried.
void quoted_run(std::string_view s, std::size_t i, std::size_t& close, std::size_t& cont) {
  close = cont = 0;
  std::size_t j = i;
  while (j < s.size()) {
    if (s[j] == '"') {
      close = j + 1 - i;
      return;
    }
    if (s[j] == '\\') {
      if (const std::size_t e = eol_at(s, j + 1)) {
        cont = j + 1 + e - i;
        if (e == 1) return;  // '.' does not match '\n': nothing goes on
      }
      if (j + 1 >= s.size()) return;
      j += 2;
    } else {
      ++j;
    }
  }
}

// collectd's unquote(): the quotes go, each '\' goes and the character after
// it stays. A NUL ends the string (it is a C string); one that then no
// longer ends with '"' is kept as it is.
std::string unquote(std::string s) {
  s.erase(std::min(s.find('\0'), s.size()));
  if (s.size() < 2 || s.front() != '"' || s.back() != '"') return s;
  std::string out;
  for (std::size_t i = 1; i + 1 < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
      if (i + 1 >= s.size()) break;
    }
    out += s[i];
  }
  return out;
}

class Scanner {
 public:
  explicit Scanner(std::string_view text) : s_(text) {}

  Token next() {
    for (;;) {
      if (i_ >= s_.size()) return make(Tok::End, i_, 0);
      const char c = s_[i_];
      if (is_white(c)) {
        ++i_;
        continue;
      }
      if (c == '#') {
        while (i_ < s_.size() && s_[i_] != '\n') ++i_;
        continue;
      }
      if (c == '\\' && eol_at(s_, i_ + 1)) {
        advance(1 + eol_at(s_, i_ + 1));
        continue;
      }
      if (const std::size_t e = eol_at(s_, i_)) return take(Tok::Eol, e);
      if (c == '/') return take(Tok::Slash, 1);
      if (c == '<') return take(Tok::Open, 1);
      if (c == '>') return take(Tok::Close, 1);
      if (std::optional<Token> t = longest()) return *t;
      advance(1);  // no rule matches: flex's default rule skips it
    }
  }

  std::size_t line() const { return line_; }

 private:
  Token make(Tok type, std::size_t at, std::size_t n) {
    Token t;
    t.type = type;
    t.text = std::string(s_.substr(at, n));
    t.line = line_;
    return t;
  }
  Token take(Tok type, std::size_t n) {
    Token t = make(type, i_, n);
    advance(n);
    return t;
  }
  void advance(std::size_t n) {
    for (std::size_t k = 0; k < n && i_ < s_.size(); ++k, ++i_)
      if (s_[i_] == '\n') ++line_;
  }

  // The rules that match words, numbers, addresses and strings.
  std::optional<Token> longest() {
    enum Rule { Bool, V4, V6, Num, Quoted, Unquoted, Multiline, Rules };
    std::size_t len[Rules] = {};
    bool boolean = false;
    for (const auto& [word, value] :
         {std::pair{"true", true}, {"yes", true}, {"on", true}, {"false", false}, {"no", false}, {"off", false}}) {
      const std::size_t n = std::strlen(word);
      if (s_.substr(i_, n) == word && n > len[Bool]) {
        len[Bool] = n;
        boolean = value;
      }
    }
    const char c = s_[i_];
    if (std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '[') {
      len[V4] = is_digit(c) ? longest_address(s_, i_, ipv4_regex()) : 0;
      len[V6] = longest_address(s_, i_, ipv6_regex());
    }
    len[Num] = number_length(s_, i_);
    if (c == '"') quoted_run(s_, i_ + 1, len[Quoted], len[Multiline]);
    if (len[Quoted]) ++len[Quoted];
    if (len[Multiline]) ++len[Multiline];
    while (i_ + len[Unquoted] < s_.size() && is_word(s_[i_ + len[Unquoted]])) ++len[Unquoted];

    int best = Rules;
    for (int r = 0; r < Rules; ++r)
      if (len[r] > 0 && (best == Rules || len[r] > len[best])) best = r;
    if (best == Rules) return std::nullopt;
    const std::size_t n = len[best];
    switch (best) {
      case Bool: {
        Token t = take(Tok::Bool, n);
        t.boolean = boolean;
        return t;
      }
      case Num: {
        Token t = take(Tok::Number, n);
        t.number = std::strtod(t.text.c_str(), nullptr);
        return t;
      }
      case Quoted: {
        Token t = take(Tok::Quoted, n);
        t.text = unquote(t.text);
        return t;
      }
      case Multiline: return multiline(n);
      default: return take(Tok::Unquoted, n);  // addresses are strings too
    }
  }

  // A quoted string continued at the end of its line (first: its first
  // piece's length, "\" and end of line included). Each following line,
  // its leading white space dropped, adds its text up to a "\" + end of
  // line (another piece) or a closing '"' (the last). At the end of the
  // input before that, the string is lost, as collectd's scanner loses it.
  std::optional<Token> multiline(std::size_t first) {
    const std::size_t start_line = line_;
    // The first piece, without its "\" and end of line.
    std::string buffer(s_.substr(i_, first));
    buffer.resize(buffer.size() - (buffer.size() >= 2 && buffer[buffer.size() - 2] == '\r' ? 3 : 2));
    advance(first);
    for (;;) {
      if (i_ >= s_.size()) return make(Tok::End, i_, 0);
      const bool at_line_start = i_ == 0 || s_[i_ - 1] == '\n';
      if (at_line_start && is_white(s_[i_])) {
        while (i_ < s_.size() && is_white(s_[i_])) ++i_;
        continue;
      }
      std::size_t close = 0, cont = 0;
      if (!is_white(s_[i_])) quoted_run(s_, i_ + 1, close, cont);
      if (close == 0 && cont == 0) {
        advance(1);  // no rule matches
        continue;
      }
      if (close > cont) {
        buffer.append(s_.substr(i_, close + 1));
        advance(close + 1);
        Token t;
        t.type = Tok::Quoted;
        t.text = unquote(buffer);
        t.line = start_line;
        return t;
      }
      std::string piece(s_.substr(i_, cont + 1));
      piece.resize(piece.size() - (piece.size() >= 2 && piece[piece.size() - 2] == '\r' ? 3 : 2));
      buffer += piece;
      advance(cont + 1);
    }
  }

  std::string_view s_;
  std::size_t i_ = 0;
  std::size_t line_ = 1;
};

// --- the parser --------------------------------------------------------------
// collectd's grammar: a file is statements; a statement is an empty line,
// an option (a key, one or more values, end of line) or a block
// (<Key values...> end of line, statements, </Key> end of line, the keys
// equal as written). Keys are unquoted strings. An item with neither values
// nor children is dropped, as collectd's parser drops it.

// Deeper nesting than any configuration needs; bison's stack would run out
// somewhat later. Bounds the recursion.
constexpr int kMaxNesting = 1000;

class Parser {
 public:
  Parser(std::string_view text, const std::string& file) : scanner_(text), file_(file) { advance(); }

  ConfigNode parse() {
    ConfigNode root;
    statements(root, 0);
    if (tok_.type != Tok::End) fail(tok_.type == Tok::Open ? "syntax error, unexpected SLASH" : "syntax error");
    return root;
  }

 private:
  void advance() { tok_ = scanner_.next(); }

  [[noreturn]] void fail(const std::string& why) const {
    // A quoted string may be a password: it is not shown (the line is).
    std::string near = tok_.type == Tok::End      ? ""
                       : tok_.type == Tok::Eol    ? "<newline>"
                       : tok_.type == Tok::Quoted ? "\"***\""
                                                  : tok_.text;
    near.erase(std::min(near.find('\n'), near.size()));
    if (near.size() > 60) near = near.substr(0, 60) + "...";
    throw ConfSyntaxError("Parse error in file `" + file_ + "', line " + std::to_string(tok_.line) + " near `" +
                          near + "': " + why);
  }

  void expect(Tok type, const char* what) {
    if (tok_.type != type) fail(std::string("syntax error, expecting ") + what);
    advance();
  }

  // Statements into parent until the end or a "</".
  void statements(ConfigNode& parent, int depth) {
    for (;;) {
      switch (tok_.type) {
        case Tok::Eol: advance(); break;
        case Tok::Unquoted: {
          ConfigNode node;
          node.key = tok_.text;
          advance();
          if (!values(node)) fail("syntax error, expecting a value");
          expect(Tok::Eol, "EOL");
          parent.children.push_back(std::move(node));
          break;
        }
        case Tok::Open: {
          advance();
          if (tok_.type == Tok::Slash) return;  // the parent's end
          if (depth >= kMaxNesting) fail("blocks nested too deep");
          ConfigNode node;
          if (tok_.type != Tok::Unquoted) fail("syntax error, expecting UNQUOTED_STRING");
          node.key = tok_.text;
          advance();
          values(node);
          expect(Tok::Close, "CLOSEBRAC");
          expect(Tok::Eol, "EOL");
          statements(node, depth + 1);
          if (tok_.type != Tok::Slash) fail("syntax error, unexpected end of file");
          advance();
          if (tok_.type != Tok::Unquoted) fail("syntax error, expecting UNQUOTED_STRING");
          const std::string end_key = tok_.text;
          advance();
          expect(Tok::Close, "CLOSEBRAC");
          if (tok_.type != Tok::Eol) fail("syntax error, expecting EOL");
          if (end_key != node.key) fail("block not closed");
          advance();
          if (!node.values.empty() || !node.children.empty()) parent.children.push_back(std::move(node));
          break;
        }
        case Tok::End: return;
        default: fail("syntax error");
      }
    }
  }

  // Zero or more values; whether there was one.
  bool values(ConfigNode& node) {
    const std::size_t before = node.values.size();
    for (;;) {
      switch (tok_.type) {
        case Tok::Number: node.values.push_back(ConfigValue::of(tok_.number)); break;
        case Tok::Bool: node.values.push_back(ConfigValue::of(tok_.boolean)); break;
        case Tok::Quoted:
        case Tok::Unquoted: node.values.push_back(ConfigValue::of(tok_.text)); break;
        default: return node.values.size() > before;
      }
      advance();
    }
  }

  Scanner scanner_;
  std::string file_;
  Token tok_;
};

}  // namespace

ConfigNode parse_conf_text(std::string_view text, const std::string& file) { return Parser(text, file).parse(); }

}  // namespace xmatters
