import Foundation
import RunbookAWS
import RunbookProcess
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// `s3://BUCKET/PREFIX`, parsed.
package struct S3Location: Sendable, Hashable, CustomStringConvertible {
  package var bucket: String
  /// Without leading or trailing `/`; may be empty.
  package var prefix: String

  /// Parses `s3://BUCKET[/PREFIX]`, or says why the text is not one.
  package static func parse(_ text: String) -> Result<S3Location, UsageError> {
    guard text.hasPrefix("s3://") else {
      return .failure(UsageError("'\(text)' is not an s3://BUCKET/PREFIX location"))
    }
    let rest = text.dropFirst("s3://".count)
    let bucket = String(rest.prefix { $0 != "/" })
    let prefix = rest.dropFirst(bucket.count).split(separator: "/").joined(separator: "/")
    guard
      bucket.range(of: #"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"#, options: .regularExpression) != nil
    else {
      return .failure(UsageError("'\(text)': '\(bucket)' is not an S3 bucket name"))
    }
    guard prefix.range(of: #"^[A-Za-z0-9!_.*'()/-]*$"#, options: .regularExpression) != nil else {
      return .failure(
        UsageError("'\(text)': the prefix may hold letters, digits and !_.*'()/- only"))
    }
    return .success(S3Location(bucket: bucket, prefix: prefix))
  }

  /// This location, with `name` appended to the prefix.
  package func appending(_ name: String) -> S3Location {
    S3Location(bucket: bucket, prefix: prefix.isEmpty ? name : prefix + "/" + name)
  }

  /// The key of an object under the prefix.
  func key(_ name: String) -> String { prefix.isEmpty ? name : prefix + "/" + name }

  package var description: String { "s3://\(bucket)" + (prefix.isEmpty ? "" : "/" + prefix) }
}
