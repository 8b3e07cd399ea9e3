import Foundation

/// The first group of every match of `expression` in `text` (the whole match when it has no group).
package func extractedValues(_ expression: String, in text: String) -> [String] {
  guard let regex = try? NSRegularExpression(pattern: expression) else { return [] }
  let whole = NSRange(text.startIndex..., in: text)
  return regex.matches(in: text, range: whole).compactMap { match in
    let range = match.numberOfRanges > 1 ? match.range(at: 1) : match.range
    return Range(range, in: text).map { String(text[$0]) }
  }
}
