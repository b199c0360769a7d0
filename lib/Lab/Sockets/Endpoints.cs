using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Lab.Interop;

namespace Lab.Sockets;

/// <summary>Endpoint strings as a learner writes them, parsed to <see cref="IPEndPoint"/> values.</summary>
public static class Endpoints
{
    const string Forms = "Write IPv4 as 127.0.0.1:8080, IPv6 as [::1]:8080 (brackets around the address), " +
                         "a bare address (127.0.0.1, ::) for port 0; port 0 lets the kernel pick a free port.";

    /// <summary>
    /// Parses "127.0.0.1:8080", "0.0.0.0:0", "[::]:0", "[::1]:80", and bare addresses ("::", "127.0.0.1") meaning
    /// port 0. No name resolution: "localhost" is refused with a hint. Throws <see cref="ArgumentException"/> naming
    /// the input and the accepted forms.
    /// </summary>
    public static IPEndPoint Parse(string endpoint) => Parse(endpoint, nameof(endpoint));

    internal static IPEndPoint Parse(string endpoint, string paramName)
    {
        if (string.IsNullOrWhiteSpace(endpoint))
            throw new ArgumentException($"The endpoint is empty. {Forms}", paramName);
        var s = endpoint.Trim();
        string host, port;
        if (s.StartsWith('['))
        {
            int close = s.IndexOf(']');
            if (close < 0) throw Bad(endpoint, "it opens '[' without a closing ']'", paramName);
            host = s[1..close];
            var rest = s[(close + 1)..];
            if (rest.Length == 0) port = "0";
            else if (rest[0] == ':') port = rest[1..];
            else throw Bad(endpoint, $"'{rest}' follows ']' where ':PORT' was expected", paramName);
            if (!IPAddress.TryParse(host, out var a6) || a6.AddressFamily != AddressFamily.InterNetworkV6)
                throw Bad(endpoint, $"'{host}' is not an IPv6 address", paramName);
            return new IPEndPoint(a6, ParsePort(endpoint, port, paramName));
        }
        int colons = s.Count(c => c == ':');
        if (colons >= 2)
        {
            // Bare IPv6 ("::", "::1", "fe80::1"): no port possible without brackets.
            if (!IPAddress.TryParse(s, out var bare) || bare.AddressFamily != AddressFamily.InterNetworkV6)
                throw Bad(endpoint, "it has several ':' but is not an IPv6 address (put IPv6 in brackets before a port: [::1]:8080)", paramName);
            return new IPEndPoint(bare, 0);
        }
        if (colons == 1) { int i = s.IndexOf(':'); host = s[..i]; port = s[(i + 1)..]; }
        else { host = s; port = "0"; }
        if (host.Length == 0) throw Bad(endpoint, "the address before ':' is missing (0.0.0.0 means every IPv4 address)", paramName);
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
            throw Bad(endpoint, "the lab does not resolve names; use 127.0.0.1 (or [::1]) instead of localhost", paramName);
        if (!IPAddress.TryParse(host, out var a) || a.AddressFamily != AddressFamily.InterNetwork || host.Count(c => c == '.') != 3)
            throw Bad(endpoint, $"'{host}' is not a dotted IPv4 address", paramName);
        return new IPEndPoint(a, ParsePort(endpoint, port, paramName));
    }

    static int ParsePort(string endpoint, string port, string paramName)
    {
        if (!int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out int p))
            throw Bad(endpoint, $"the port '{port}' is not a number", paramName);
        if (p > 65535) throw Bad(endpoint, $"the port {p} is outside 0-65535", paramName);
        return p;
    }

    static ArgumentException Bad(string endpoint, string why, string paramName)
        => new($"'{endpoint}' is not an endpoint: {why}. {Forms}", paramName);

    /// <summary>"127.0.0.1:8080" or "[::1]:8080", the form <see cref="Parse(string)"/> reads and ss prints.</summary>
    public static string Format(IPEndPoint ep) => ep.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{ep.Address}]:{ep.Port}" : $"{ep.Address}:{ep.Port}";

    internal static void Validate(IPEndPoint ep, string paramName)
    {
        ArgumentNullException.ThrowIfNull(ep, paramName);
        if (ep.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
            throw new ArgumentException($"{ep} is a {ep.AddressFamily} endpoint; the lab speaks TCP over IPv4 and IPv6 only.", paramName);
    }
}

/// <summary>sockaddr_in / sockaddr_in6 marshalling, through <see cref="sockaddr_union"/>.</summary>
internal static unsafe class SockAddr
{
    public const int MaxLength = 28;

    public static int From(IPEndPoint ep, out sockaddr_union sa)
    {
        sa = default;
        if (ep.AddressFamily == AddressFamily.InterNetwork)
        {
            sa.in4.sin_family = sys_socket.AF_INET;
            sa.in4.sin_port = BinaryPrimitives.ReverseEndianness((ushort)ep.Port);
            uint a = 0;
            ep.Address.TryWriteBytes(new Span<byte>(&a, 4), out _);
            sa.in4.sin_addr = a;
            return sizeof(sockaddr_in);
        }
        sa.in6.sin6_family = sys_socket.AF_INET6;
        sa.in6.sin6_port = BinaryPrimitives.ReverseEndianness((ushort)ep.Port);
        fixed (byte* p = sa.in6.sin6_addr) ep.Address.TryWriteBytes(new Span<byte>(p, 16), out _);
        sa.in6.sin6_scope_id = (uint)ep.Address.ScopeId;
        return sizeof(sockaddr_in6);
    }

    public static IPEndPoint? ToEndPoint(in sockaddr_union sa)
    {
        if (sa.sa_family == sys_socket.AF_INET)
        {
            uint a = sa.in4.sin_addr;
            return new IPEndPoint(new IPAddress(new ReadOnlySpan<byte>(&a, 4)), BinaryPrimitives.ReverseEndianness(sa.in4.sin_port));
        }
        if (sa.sa_family == sys_socket.AF_INET6)
        {
            var six = sa.in6;   // a local: its fixed buffer needs no pinning
            var addr = new IPAddress(new ReadOnlySpan<byte>(six.sin6_addr, 16), six.sin6_scope_id);
            return new IPEndPoint(addr, BinaryPrimitives.ReverseEndianness(six.sin6_port));
        }
        return null;
    }

    /// <summary>getsockname(2) / getpeername(2).</summary>
    public static IPEndPoint? Name(SafeHandle fd, bool peer)
    {
        sockaddr_union sa = default;
        Tmds.Linux.socklen_t len = MaxLength;
        using var b = Sys.Borrow(fd);
        int r = peer ? Tmds.Linux.LibC.getpeername(b.Fd, (Tmds.Linux.sockaddr*)&sa, &len)
                     : Tmds.Linux.LibC.getsockname(b.Fd, (Tmds.Linux.sockaddr*)&sa, &len);
        if (r != 0)
        {
            if (peer && Sys.Errno == errno.ENOTCONN) return null;
            throw Sys.Fail(peer ? "getpeername" : "getsockname", $"fd {b.Fd}");
        }
        return ToEndPoint(sa);
    }
}
