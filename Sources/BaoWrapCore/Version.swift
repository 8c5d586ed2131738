import CBaoWrap

public enum Version {
    public static let number = "0.1.0"

    /// `baowrap version`'s text: what an operator needs in a bug report.
    public static var text: String {
        """
        baowrap \(number)
        revision: \(String(cString: bw_build_revision()))
        libcurl: \(String(cString: bw_curl_version()))
        tls: \(String(cString: bw_openssl_version()))
        """
    }

    public static var userAgent: String { "baowrap/\(number)" }
}
