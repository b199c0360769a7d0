using System.Buffers.Text;
using System.Diagnostics;
using System.Text;

namespace Lab.Http;

/// <summary>What a request asks the server to do.</summary>
public enum Route : byte
{
    /// <summary>Any other path: the fixed body, straight away (the same body nginx serves in the benchmarks).</summary>
    Hello,
    /// <summary><c>/work?ms=N</c>: keep a CPU busy for N ms, then answer (a slow request that occupies its thread).</summary>
    Work,
    /// <summary><c>/sleep?ms=N</c>: block the thread for N ms, then answer (a slow request that waits).</summary>
    Sleep,
}

/// <summary>One parsed request: where it goes, how long its simulated work is, and whether the connection stays open.</summary>
public readonly record struct HttpRequest(Route Route, int Milliseconds, bool KeepAlive)
{
    /// <summary>A HEAD request: answered with the headers a GET would get and no body (RFC 9110 section 9.3.2).</summary>
    public bool Head { get; init; }
}

/// <summary>The outcome of parsing the start of a buffer.</summary>
public enum ParseStatus : byte
{
    /// <summary>A whole request was parsed; <c>consumed</c> bytes belong to it.</summary>
    Complete,
    /// <summary>The headers have not all arrived: read more and try again.</summary>
    Incomplete,
    /// <summary>Not HTTP/1.x as the lab speaks it: answer 400 and close.</summary>
    Invalid,
}

/// <summary>
/// The one tiny HTTP/1.1 every topology speaks: GET (or HEAD) with keep-alive or <c>Connection: close</c>, no bodies
/// in requests. Enough for wrk and curl, and for nginx to serve the same paths in the benchmarks. Parsing and
/// responding allocate nothing, so the server's own overhead stays small next to what a topology does.
/// </summary>
public static class TinyHttp
{
    /// <summary>The fixed body of <see cref="Route.Hello"/> (13 bytes); the benchmarks configure nginx to return the same.</summary>
    public static ReadOnlySpan<byte> HelloBody => "Hello, world\n"u8;

    /// <summary>Simulated work is capped so a typo cannot hold a thread for minutes.</summary>
    public const int MaxMilliseconds = 10_000;

    /// <summary>Requests with more header bytes than this are invalid (protects the read buffer).</summary>
    public const int MaxHeaderBytes = 8192;

    static ReadOnlySpan<byte> HeaderEnd => "\r\n\r\n"u8;

    /// <summary>Parses one request from the start of <paramref name="buffer"/>; pipelined requests parse one call at a time.</summary>
    public static ParseStatus TryParse(ReadOnlySpan<byte> buffer, out HttpRequest request, out int consumed)
    {
        request = default;
        consumed = 0;
        int end = buffer.IndexOf(HeaderEnd);
        if (end < 0) return buffer.Length > MaxHeaderBytes ? ParseStatus.Invalid : ParseStatus.Incomplete;
        var head = buffer[..end];
        int lineEnd = head.IndexOf("\r\n"u8);
        var requestLine = lineEnd < 0 ? head : head[..lineEnd];
        var headers = lineEnd < 0 ? ReadOnlySpan<byte>.Empty : head[(lineEnd + 2)..];

        // "GET /path?query HTTP/1.1"
        int sp1 = requestLine.IndexOf((byte)' ');
        if (sp1 <= 0) return ParseStatus.Invalid;
        var method = requestLine[..sp1];
        if (!method.SequenceEqual("GET"u8) && !method.SequenceEqual("HEAD"u8)) return ParseStatus.Invalid;
        var rest = requestLine[(sp1 + 1)..];
        int sp2 = rest.IndexOf((byte)' ');
        if (sp2 <= 0) return ParseStatus.Invalid;
        var target = rest[..sp2];
        var version = rest[(sp2 + 1)..];
        bool http11;
        if (version.SequenceEqual("HTTP/1.1"u8)) http11 = true;
        else if (version.SequenceEqual("HTTP/1.0"u8)) http11 = false;
        else return ParseStatus.Invalid;

        bool keepAlive = http11;
        foreach (var line in new LineEnumerator(headers))
        {
            int colon = line.IndexOf((byte)':');
            if (colon <= 0) return ParseStatus.Invalid;
            if (!Ascii.EqualsIgnoreCase(line[..colon], "connection"u8)) continue;
            var value = line[(colon + 1)..].Trim((byte)' ');
            if (Ascii.EqualsIgnoreCase(value, "close"u8)) keepAlive = false;
            else if (Ascii.EqualsIgnoreCase(value, "keep-alive"u8)) keepAlive = true;
        }

        var route = Route.Hello;
        int ms = 0;
        int q = target.IndexOf((byte)'?');
        var path = q < 0 ? target : target[..q];
        if (path.SequenceEqual("/work"u8)) route = Route.Work;
        else if (path.SequenceEqual("/sleep"u8)) route = Route.Sleep;
        if (route != Route.Hello)
        {
            var query = q < 0 ? ReadOnlySpan<byte>.Empty : target[(q + 1)..];
            int at = query.IndexOf("ms="u8);
            if (at < 0 || (at > 0 && query[at - 1] != (byte)'&')) return ParseStatus.Invalid;
            var digits = query[(at + 3)..];
            int amp = digits.IndexOf((byte)'&');
            if (amp >= 0) digits = digits[..amp];
            if (!Utf8Parser.TryParse(digits, out ms, out int used) || used != digits.Length || ms < 0 || ms > MaxMilliseconds)
                return ParseStatus.Invalid;
        }
        request = new HttpRequest(route, ms, keepAlive) { Head = method.Length == 4 };
        consumed = end + HeaderEnd.Length;
        return ParseStatus.Complete;
    }

    /// <summary>Does the request's simulated work on the calling thread.</summary>
    public static void Perform(in HttpRequest request)
    {
        switch (request.Route)
        {
            case Route.Work:
                // Busy on the CPU, not parked: the point is a thread that cannot serve anyone else meanwhile.
                var until = Stopwatch.GetTimestamp() + request.Milliseconds * Stopwatch.Frequency / 1000;
                while (Stopwatch.GetTimestamp() < until) Thread.SpinWait(64);
                break;
            case Route.Sleep:
                Thread.Sleep(request.Milliseconds);
                break;
        }
    }

    /// <summary>
    /// The responses as nginx sends them (Server, Date, Content-Type, Content-Length, Connection, in its order), so a
    /// benchmark against nginx moves the same bytes: "Server: lab/1" is as long as nginx's "Server: nginx" with
    /// server_tokens off, and Date is the HTTP date of this second (RFC 9110 section 6.6.1 asks an origin server with a
    /// clock to send it). They are rebuilt at most once a second, as nginx caches its time (ngx_time_update); a server
    /// writing an older set keeps it to the end, since a set is never changed once built.
    /// </summary>
    sealed class ResponseSet
    {
        public readonly long ValidUntil; // Environment.TickCount64
        public readonly byte[] OkKeepAlive, OkClose, HeadKeepAlive, HeadClose, BadRequest;

        public ResponseSet()
        {
            var now = DateTime.UtcNow;
            ValidUntil = Environment.TickCount64 + 1000 - now.Millisecond;
            var head = $"Server: lab/1\r\nDate: {now.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}\r\nContent-Type: text/plain\r\n";
            OkKeepAlive = Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\n{head}Content-Length: 13\r\nConnection: keep-alive\r\n\r\nHello, world\n");
            OkClose = Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\n{head}Content-Length: 13\r\nConnection: close\r\n\r\nHello, world\n");
            HeadKeepAlive = OkKeepAlive[..^HelloBody.Length];
            HeadClose = OkClose[..^HelloBody.Length];
            BadRequest = Encoding.ASCII.GetBytes($"HTTP/1.1 400 Bad Request\r\n{head}Content-Length: 12\r\nConnection: close\r\n\r\nBad request\n");
        }
    }

    static ResponseSet _responses = new();

    static ResponseSet Responses
    {
        get
        {
            var r = Volatile.Read(ref _responses);
            if (Environment.TickCount64 < r.ValidUntil) return r;
            // Two threads may both rebuild at a second's turn; either set is right, and the loser's is garbage.
            r = new ResponseSet();
            Volatile.Write(ref _responses, r);
            return r;
        }
    }

    /// <summary>The whole response to a request (every route answers the fixed body once its work is done; HEAD gets the headers only).</summary>
    public static ReadOnlySpan<byte> Response(in HttpRequest request) => ResponseArray(request);

    /// <summary>The response to an invalid request; the server closes the connection after sending it.</summary>
    public static ReadOnlySpan<byte> BadRequestResponse => BadRequestArray;

    // The same responses as arrays, so a server can keep its place in one across partial writes without copying.
    internal static byte[] ResponseArray(in HttpRequest request)
    {
        var r = Responses;
        return request.Head ? (request.KeepAlive ? r.HeadKeepAlive : r.HeadClose) : (request.KeepAlive ? r.OkKeepAlive : r.OkClose);
    }

    internal static byte[] BadRequestArray => Responses.BadRequest;

    /// <summary>A request for <paramref name="route"/> as a client sends it (used by the load generator and tests).</summary>
    public static byte[] BuildRequest(Route route = Route.Hello, int milliseconds = 0, bool keepAlive = true, string host = "lab")
    {
        var target = route switch
        {
            Route.Work => $"/work?ms={milliseconds}",
            Route.Sleep => $"/sleep?ms={milliseconds}",
            _ => "/",
        };
        return Encoding.ASCII.GetBytes($"GET {target} HTTP/1.1\r\nHost: {host}\r\n{(keepAlive ? "" : "Connection: close\r\n")}\r\n");
    }

    /// <summary>
    /// Finds the end of one response at the start of <paramref name="buffer"/> (headers plus Content-Length bytes);
    /// returns its length, or 0 when it has not all arrived. <paramref name="status"/> is the status code.
    /// </summary>
    public static int TryParseResponse(ReadOnlySpan<byte> buffer, out int status, out bool keepAlive)
    {
        status = 0;
        keepAlive = true;
        int end = buffer.IndexOf(HeaderEnd);
        if (end < 0) return 0;
        var head = buffer[..end];
        if (head.Length < 12 || !Utf8Parser.TryParse(head.Slice(9, 3), out status, out _)) return -1;
        int length = 0;
        int lineEnd = head.IndexOf("\r\n"u8);
        foreach (var line in new LineEnumerator(lineEnd < 0 ? default : head[(lineEnd + 2)..]))
        {
            int colon = line.IndexOf((byte)':');
            if (colon <= 0) continue;
            var name = line[..colon];
            var value = line[(colon + 1)..].Trim((byte)' ');
            if (Ascii.EqualsIgnoreCase(name, "content-length"u8)) Utf8Parser.TryParse(value, out length, out _);
            else if (Ascii.EqualsIgnoreCase(name, "connection"u8) && Ascii.EqualsIgnoreCase(value, "close"u8)) keepAlive = false;
        }
        int total = end + HeaderEnd.Length + length;
        return buffer.Length >= total ? total : 0;
    }

    ref struct LineEnumerator(ReadOnlySpan<byte> text)
    {
        ReadOnlySpan<byte> _rest = text;
        public ReadOnlySpan<byte> Current { get; private set; }
        public readonly LineEnumerator GetEnumerator() => this;
        public bool MoveNext()
        {
            if (_rest.IsEmpty) return false;
            int nl = _rest.IndexOf("\r\n"u8);
            if (nl < 0) { Current = _rest; _rest = default; }
            else { Current = _rest[..nl]; _rest = _rest[(nl + 2)..]; }
            return true;
        }
    }
}
