/// Reads one JSON object field by field, remembering problems (with their paths) and unknown keys.
///
/// Every problem is collected so that one run reports them all at once.
final class FieldReader {
  let path: String
  private let fields: [String: JSONValue]
  private var used: Set<String> = []
  /// Where every problem goes, also those a section finds across its fields.
  let problems: ProblemList

  init(_ value: JSONValue, path: String, problems: ProblemList) {
    self.path = path
    self.problems = problems
    if case .object(let fields) = value {
      self.fields = fields
    } else {
      self.fields = [:]
      problems.add(path.isEmpty ? "(top level)" : path, "must be an object, not \(value.kindName)")
    }
  }

  func fieldPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

  func raw(_ key: String) -> JSONValue? {
    used.insert(key)
    guard let value = fields[key], value != .null else { return nil }
    return value
  }

  func string(_ key: String, default fallback: String? = nil, check: ((String) -> String?)? = nil)
    -> String
  {
    guard let value = raw(key) else {
      if let fallback { return fallback }
      problems.add(fieldPath(key), "is required")
      return ""
    }
    guard case .string(let text) = value else {
      problems.add(fieldPath(key), "must be a string, not \(value.kindName)")
      return fallback ?? ""
    }
    if let check, let reason = check(text) { problems.add(fieldPath(key), reason) }
    return text
  }

  func optionalString(_ key: String, check: ((String) -> String?)? = nil) -> String? {
    guard raw(key) != nil else { return nil }
    return string(key, check: check)
  }

  func int(_ key: String, default fallback: Int? = nil, range: ClosedRange<Int>) -> Int {
    guard let value = raw(key) else {
      if let fallback { return fallback }
      problems.add(fieldPath(key), "is required")
      return range.lowerBound
    }
    guard case .number(let number) = value, number.rounded() == number,
      let whole = Int(exactly: number)
    else {
      problems.add(fieldPath(key), "must be a whole number, not \(value.kindName)")
      return fallback ?? range.lowerBound
    }
    guard range.contains(whole) else {
      problems.add(
        fieldPath(key), "\(whole) is out of range (\(range.lowerBound)-\(range.upperBound))")
      return fallback ?? range.lowerBound
    }
    return whole
  }

  func bool(_ key: String, default fallback: Bool) -> Bool {
    guard let value = raw(key) else { return fallback }
    guard case .bool(let flag) = value else {
      problems.add(fieldPath(key), "must be true or false, not \(value.kindName)")
      return fallback
    }
    return flag
  }

  func object<T>(_ key: String, required: Bool = true, _ read: (FieldReader) -> T) -> T? {
    guard let value = raw(key) else {
      if required { problems.add(fieldPath(key), "is required") }
      return nil
    }
    let reader = FieldReader(value, path: fieldPath(key), problems: problems)
    let result = read(reader)
    reader.finish()
    return result
  }

  func array<T>(_ key: String, _ read: (JSONValue, String) -> T?) -> [T] {
    guard let value = raw(key) else {
      problems.add(fieldPath(key), "is required")
      return []
    }
    guard case .array(let items) = value else {
      problems.add(fieldPath(key), "must be an array, not \(value.kindName)")
      return []
    }
    return items.enumerated().compactMap { index, item in read(item, "\(fieldPath(key))[\(index)]")
    }
  }

  func objects<T>(_ key: String, _ read: (FieldReader) -> T) -> [T] {
    array(key) { item, path in
      let reader = FieldReader(item, path: path, problems: problems)
      defer { reader.finish() }
      return read(reader)
    }
  }

  func strings(_ key: String, check: ((String) -> String?)? = nil) -> [String] {
    array(key) { item, path in
      guard case .string(let text) = item else {
        problems.add(path, "must be a string, not \(item.kindName)")
        return nil
      }
      if let check, let reason = check(text) { problems.add(path, reason) }
      return text
    }
  }

  func stringMap(_ key: String) -> [String: String] {
    guard let value = raw(key) else { return [:] }
    guard case .object(let fields) = value else {
      problems.add(fieldPath(key), "must be an object, not \(value.kindName)")
      return [:]
    }
    var result: [String: String] = [:]
    for (name, item) in fields {
      if case .string(let text) = item {
        result[name] = text
      } else {
        problems.add("\(fieldPath(key)).\(name)", "must be a string, not \(item.kindName)")
      }
    }
    return result
  }

  /// Reports every key that no read asked for.
  func finish() {
    for key in fields.keys.sorted() where !used.contains(key) {
      problems.add(fieldPath(key), "is not a known setting")
    }
  }
}

/// Problems found in one file, in the order found.
final class ProblemList {
  private(set) var items: [(field: String, reason: String)] = []
  func add(_ field: String, _ reason: String) { items.append((field, reason)) }
}
