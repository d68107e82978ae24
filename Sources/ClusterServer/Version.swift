/// The NATS server version clusterd reports in INFO and /varz. Clients gate features on it
/// (nats.go needs >= 2.9.0 for named consumer creation), so it tracks the feature set we serve.
public enum ServerVersion {
    public static let nats = "2.12.0"
    public static let clusterd = "0.1.0"
}
