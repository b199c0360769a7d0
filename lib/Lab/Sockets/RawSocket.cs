using System.Net;
using System.Net.Sockets;
using Lab.Interop;
using Tmds.Linux;

namespace Lab.Sockets;

/// <summary>
/// A raw IPv4 socket for hand-made TCP segments (socket(AF_INET, SOCK_RAW, IPPROTO_TCP)), e.g. the SYN-flood
/// chapter. Needs CAP_NET_RAW: without it socket(2) fails with EPERM. The kernel builds the IP header unless
/// <c>headerIncluded</c> is set (IP_HDRINCL). Send only to loopback or the lab's own namespaces.
/// </summary>
public sealed unsafe class RawSocket : IDisposable
{
    RawSocket(Fd fd) { Handle = fd; LabResources.Track(this, "RawSocket"); }

    /// <summary>The raw socket's descriptor.</summary>
    public Fd Handle { get; }

    /// <summary>Opens socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_TCP), with IP_HDRINCL when <paramref name="headerIncluded"/>.</summary>
    public static RawSocket OpenTcp(bool headerIncluded = false)
    {
        int raw = LibC.socket(sys_socket.AF_INET, sys_socket.SOCK_RAW | sys_socket.SOCK_CLOEXEC, sys_socket.IPPROTO_TCP);
        if (raw < 0) throw Sys.Fail("socket", "AF_INET, SOCK_RAW, IPPROTO_TCP");
        var fd = new Fd(raw);
        try
        {
            if (headerIncluded) Sys.SetInt(fd, sys_socket.IPPROTO_IP, sys_socket.IP_HDRINCL, 1, "IP_HDRINCL on a raw socket");
            return new RawSocket(fd);
        }
        catch { fd.Dispose(); throw; }
    }

    /// <summary>sendto(2) one segment (a TCP header and payload, or a whole IP packet with IP_HDRINCL) to <paramref name="destination"/>.</summary>
    public int SendTo(ReadOnlySpan<byte> packet, IPAddress destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        if (destination.AddressFamily != AddressFamily.InterNetwork)
            throw new ArgumentException($"{destination} is not IPv4; RawSocket.OpenTcp is an AF_INET socket.", nameof(destination));
        int len = SockAddr.From(new IPEndPoint(destination, 0), out var sa);
        long n;
        using var b = Sys.Borrow(Handle);
        fixed (byte* p = packet)
        {
            do n = LibC.sendto(b.Fd, p, packet.Length, 0, (sockaddr*)&sa, len);
            while (Sys.Interrupted(n));
        }
        if (n < 0) throw Sys.Fail("sendto", destination.ToString());
        return (int)n;
    }

    /// <summary>
    /// Receives one packet (with its IP header: a raw IPPROTO_TCP socket gets a copy of every TCP packet arriving in
    /// its namespace), waiting at most <paramref name="timeoutMs"/>. Returns its length, or 0 when none came in time.
    /// </summary>
    public int Receive(Span<byte> buffer, int timeoutMs)
    {
        if ((Sys.Poll(Handle, (short)LibC.POLLIN, timeoutMs, "raw socket") & LibC.POLLIN) == 0) return 0;
        long n;
        using var b = Sys.Borrow(Handle);
        fixed (byte* p = buffer)
        {
            do n = LibC.recv(b.Fd, p, buffer.Length, 0);
            while (Sys.Interrupted(n));
        }
        if (n < 0) throw Sys.Fail("recv", "raw socket");
        return (int)n;
    }

    /// <summary>Closes the socket. Safe to call twice.</summary>
    public void Dispose()
    {
        Handle.Dispose();
        LabResources.Untrack(this);
    }
}
