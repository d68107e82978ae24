/// A 56-character server id in the shape of a NATS server nkey (`N` + base32), which tools
/// display and some parse.
enum ServerIdentity {
    static func randomID<G: RandomNumberGenerator>(using rng: inout G) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        var id = "N"
        for _ in 0..<55 { id.append(alphabet[Int(rng.next() % 32)]) }
        return id
    }
}
