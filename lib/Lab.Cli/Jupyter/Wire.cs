using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Lab.Cli.Jupyter;

/// <summary>
/// A Jupyter connection file: where the five sockets bind and the key that signs messages
/// (jupyter_client's connect.py writes it; the kernel reads it).
/// </summary>
public sealed record ConnectionFile(string Transport, string Ip, int ShellPort, int IopubPort, int StdinPort,
    int ControlPort, int HbPort, string Key, string SignatureScheme)
{
    public static ConnectionFile Load(string path)
    {
        var o = JsonNode.Parse(File.ReadAllText(path)) as JsonObject
            ?? throw new FormatException($"{path}: not a JSON object");
        int Port(string name) => o[name] is { } n ? n.GetValue<int>() : throw new FormatException($"{path}: no {name}");
        return new ConnectionFile(
            (string?)o["transport"] ?? "tcp", (string?)o["ip"] ?? "127.0.0.1",
            Port("shell_port"), Port("iopub_port"), Port("stdin_port"), Port("control_port"), Port("hb_port"),
            (string?)o["key"] ?? "", (string?)o["signature_scheme"] ?? "hmac-sha256");
    }

    /// <summary>"tcp://127.0.0.1:5555"; IPv6 addresses in brackets.</summary>
    public string Endpoint(int port) => $"{Transport}://{(Ip.Contains(':') ? $"[{Ip}]" : Ip)}:{port}";
}

/// <summary>
/// One Jupyter message (messaging spec 5.3): the routing identities, then on the wire
/// <c>&lt;IDS|MSG&gt;</c>, the HMAC signature, header, parent_header, metadata, content and any buffers.
/// </summary>
public sealed class JupyterMessage
{
    public const string Delimiter = "<IDS|MSG>";
    public const string ProtocolVersion = "5.3";

    public List<byte[]> Identities { get; init; } = new();
    public JsonObject Header { get; init; } = new();
    public JsonObject ParentHeader { get; init; } = new();
    public JsonObject Metadata { get; init; } = new();
    public JsonObject Content { get; init; } = new();
    public List<byte[]> Buffers { get; init; } = new();

    public string MsgType => (string?)Header["msg_type"] ?? "";
    public string MsgId => (string?)Header["msg_id"] ?? "";
    public string Session => (string?)Header["session"] ?? "";

    /// <summary>A new message replying to or caused by <paramref name="parent"/> (its header becomes the parent header).</summary>
    public static JupyterMessage Create(string msgType, JsonObject content, JupyterMessage? parent, string session, List<byte[]>? identities = null) => new()
    {
        Identities = identities ?? new List<byte[]>(),
        Header = NewHeader(msgType, session),
        ParentHeader = parent != null ? (JsonObject)parent.Header.DeepClone() : new JsonObject(),
        Content = content,
    };

    public static JsonObject NewHeader(string msgType, string session) => new()
    {
        ["msg_id"] = Guid.NewGuid().ToString("N"),
        ["session"] = session,
        ["username"] = "lab",
        ["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture),
        ["msg_type"] = msgType,
        ["version"] = ProtocolVersion,
    };

    public override string ToString() => $"{MsgType} {MsgId}";
}

/// <summary>Reasons a received multipart message is dropped.</summary>
public sealed class BadMessageException(string message) : Exception(message);

/// <summary>
/// Signs and checks messages: HMAC (sha256 unless the connection file names another scheme) over the header,
/// parent_header, metadata and content frames exactly as sent, hex-encoded. An empty key means unsigned messages.
/// </summary>
public sealed class MessageCodec
{
    readonly byte[] _key;
    readonly string _scheme;

    public MessageCodec(string key, string signatureScheme = "hmac-sha256")
    {
        _key = Encoding.UTF8.GetBytes(key);
        _scheme = signatureScheme;
        if (_key.Length > 0 && _scheme is not ("hmac-sha256" or "hmac-sha512" or "hmac-sha1" or "hmac-md5"))
            throw new ArgumentException($"signature scheme {signatureScheme} is not supported (hmac-sha256, hmac-sha512, hmac-sha1, hmac-md5)");
    }

    static readonly JsonSerializerOptions Compact = new() { WriteIndented = false };

    public string Sign(ReadOnlySpan<byte> header, ReadOnlySpan<byte> parent, ReadOnlySpan<byte> metadata, ReadOnlySpan<byte> content)
    {
        if (_key.Length == 0) return "";
        using IncrementalHash h = _scheme switch
        {
            "hmac-sha512" => IncrementalHash.CreateHMAC(HashAlgorithmName.SHA512, _key),
            "hmac-sha1" => IncrementalHash.CreateHMAC(HashAlgorithmName.SHA1, _key),
            "hmac-md5" => IncrementalHash.CreateHMAC(HashAlgorithmName.MD5, _key),
            _ => IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _key),
        };
        h.AppendData(header); h.AppendData(parent); h.AppendData(metadata); h.AppendData(content);
        return Convert.ToHexStringLower(h.GetHashAndReset());
    }

    /// <summary>The frames to send: identities, delimiter, signature, the four JSON parts, buffers.</summary>
    public List<byte[]> Encode(JupyterMessage m)
    {
        var header = Json(m.Header);
        var parent = Json(m.ParentHeader);
        var metadata = Json(m.Metadata);
        var content = Json(m.Content);
        var frames = new List<byte[]>(m.Identities.Count + 6 + m.Buffers.Count);
        frames.AddRange(m.Identities);
        frames.Add(Encoding.ASCII.GetBytes(JupyterMessage.Delimiter));
        frames.Add(Encoding.ASCII.GetBytes(Sign(header, parent, metadata, content)));
        frames.Add(header); frames.Add(parent); frames.Add(metadata); frames.Add(content);
        frames.AddRange(m.Buffers);
        return frames;
    }

    static byte[] Json(JsonObject o) => Encoding.UTF8.GetBytes(o.ToJsonString(Compact));

    static readonly byte[] DelimiterBytes = Encoding.ASCII.GetBytes(JupyterMessage.Delimiter);

    /// <summary>Parses received frames; throws <see cref="BadMessageException"/> on a missing delimiter, a bad signature or bad JSON.</summary>
    public JupyterMessage Decode(IReadOnlyList<byte[]> frames)
    {
        var at = -1;
        for (int i = 0; i < frames.Count; i++)
            if (frames[i].AsSpan().SequenceEqual(DelimiterBytes)) { at = i; break; }
        if (at < 0) throw new BadMessageException("no <IDS|MSG> delimiter");
        if (frames.Count < at + 6) throw new BadMessageException($"{frames.Count - at - 1} frames after the delimiter, 5 needed");
        var signature = Encoding.ASCII.GetString(frames[at + 1]);
        if (_key.Length > 0)
        {
            var expected = Sign(frames[at + 2], frames[at + 3], frames[at + 4], frames[at + 5]);
            if (signature.Length == 0) throw new BadMessageException("unsigned message (the connection file has a key)");
            if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(signature.ToLowerInvariant())))
                throw new BadMessageException("bad signature");
        }
        JsonObject Part(int i, string name)
        {
            try { return JsonNode.Parse(frames[at + i]) as JsonObject ?? new JsonObject(); }
            catch (JsonException e) { throw new BadMessageException($"{name} is not JSON: {e.Message}"); }
        }
        return new JupyterMessage
        {
            Identities = frames.Take(at).ToList(),
            Header = Part(2, "header"),
            ParentHeader = Part(3, "parent_header"),
            Metadata = Part(4, "metadata"),
            Content = Part(5, "content"),
            Buffers = frames.Skip(at + 6).ToList(),
        };
    }
}
