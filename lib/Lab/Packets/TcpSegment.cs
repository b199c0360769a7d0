using System.Buffers.Binary;
using System.Net;

namespace Lab.Packets;

/// <summary>TCP header flags, as tcpdump prints them ([S], [S.], [.], [P.], [F.], [R]).</summary>
[Flags]
public enum TcpFlags : byte
{
    None = 0, Fin = 0x01, Syn = 0x02, Rst = 0x04, Psh = 0x08, Ack = 0x10, Urg = 0x20, Ece = 0x40, Cwr = 0x80,
}

/// <summary>One TCP segment seen on the wire (or built to be sent), with the kernel's receive timestamp when captured.</summary>
public sealed record TcpSegment(
    DateTime Time, IPEndPoint Source, IPEndPoint Destination, TcpFlags Flags,
    uint Seq, uint Ack, ushort Window, int PayloadLength, string Interface = "")
{
    /// <summary>tcpdump's short form of the flags: S, S., ., P., F., R, R.</summary>
    public string FlagText
    {
        get
        {
            var s = "";
            if (Flags.HasFlag(TcpFlags.Syn)) s += "S";
            if (Flags.HasFlag(TcpFlags.Fin)) s += "F";
            if (Flags.HasFlag(TcpFlags.Psh)) s += "P";
            if (Flags.HasFlag(TcpFlags.Rst)) s += "R";
            if (Flags.HasFlag(TcpFlags.Ack)) s += ".";
            return s.Length == 0 ? "none" : s;
        }
    }

    /// <summary>What the segment is in a handshake's terms: SYN, SYN-ACK, ACK, data, FIN, RST.</summary>
    public string Kind => Flags switch
    {
        _ when Flags.HasFlag(TcpFlags.Rst) => "RST",
        _ when Flags.HasFlag(TcpFlags.Syn) && Flags.HasFlag(TcpFlags.Ack) => "SYN-ACK",
        _ when Flags.HasFlag(TcpFlags.Syn) => "SYN",
        _ when Flags.HasFlag(TcpFlags.Fin) => "FIN",
        _ when PayloadLength > 0 => "data",
        _ => "ACK",
    };

    public override string ToString() =>
        $"{Time:HH:mm:ss.ffffff} {Source} > {Destination} [{FlagText}] seq {Seq}" +
        (Flags.HasFlag(TcpFlags.Ack) ? $" ack {Ack}" : "") + $" win {Window} len {PayloadLength}";

    /// <summary>Parses an IPv4 or IPv6 packet carrying TCP; null for anything else.</summary>
    public static TcpSegment? Parse(ReadOnlySpan<byte> ip, DateTime time, string iface = "")
    {
        if (ip.Length < 20) return null;
        int version = ip[0] >> 4;
        IPAddress src, dst;
        int tcpStart, totalLength;
        if (version == 4)
        {
            int ihl = (ip[0] & 0x0f) * 4;
            if (ip[9] != 6 || ip.Length < ihl + 20) return null;
            totalLength = Math.Min(BinaryPrimitives.ReadUInt16BigEndian(ip[2..]), ip.Length);
            src = new IPAddress(ip.Slice(12, 4));
            dst = new IPAddress(ip.Slice(16, 4));
            tcpStart = ihl;
        }
        else if (version == 6)
        {
            // Extension headers are not followed: the lab's own traffic carries none.
            if (ip.Length < 60 || ip[6] != 6) return null;
            totalLength = Math.Min(40 + BinaryPrimitives.ReadUInt16BigEndian(ip[4..]), ip.Length);
            src = new IPAddress(ip.Slice(8, 16));
            dst = new IPAddress(ip.Slice(24, 16));
            tcpStart = 40;
        }
        else return null;
        var tcp = ip[tcpStart..];
        int dataOffset = (tcp[12] >> 4) * 4;
        return new TcpSegment(time,
            new IPEndPoint(src, BinaryPrimitives.ReadUInt16BigEndian(tcp)),
            new IPEndPoint(dst, BinaryPrimitives.ReadUInt16BigEndian(tcp[2..])),
            (TcpFlags)tcp[13],
            BinaryPrimitives.ReadUInt32BigEndian(tcp[4..]),
            BinaryPrimitives.ReadUInt32BigEndian(tcp[8..]),
            BinaryPrimitives.ReadUInt16BigEndian(tcp[14..]),
            Math.Max(0, totalLength - tcpStart - dataOffset), iface);
    }

    /// <summary>
    /// Builds a 20-byte TCP header (plus an MSS option on SYNs) with its checksum over the IPv4 pseudo-header, for a
    /// raw IPPROTO_TCP socket (the kernel adds the IP header).
    /// </summary>
    public static byte[] BuildIPv4(IPEndPoint source, IPEndPoint destination, TcpFlags flags, uint seq, uint ack, ushort window, ushort mss = 1460)
        => BuildIPv4(source, destination, flags, seq, ack, window, ReadOnlySpan<byte>.Empty, mss);

    /// <summary>The same, with <paramref name="payload"/> after the header (covered by the checksum).</summary>
    public static byte[] BuildIPv4(IPEndPoint source, IPEndPoint destination, TcpFlags flags, uint seq, uint ack, ushort window, ReadOnlySpan<byte> payload, ushort mss = 1460)
    {
        bool withMss = flags.HasFlag(TcpFlags.Syn);
        int header = withMss ? 24 : 20;
        var tcp = new byte[header + payload.Length];
        payload.CopyTo(tcp.AsSpan(header));
        BinaryPrimitives.WriteUInt16BigEndian(tcp, (ushort)source.Port);
        BinaryPrimitives.WriteUInt16BigEndian(tcp.AsSpan(2), (ushort)destination.Port);
        BinaryPrimitives.WriteUInt32BigEndian(tcp.AsSpan(4), seq);
        BinaryPrimitives.WriteUInt32BigEndian(tcp.AsSpan(8), ack);
        tcp[12] = (byte)((header / 4) << 4);
        tcp[13] = (byte)flags;
        BinaryPrimitives.WriteUInt16BigEndian(tcp.AsSpan(14), window);
        if (withMss)
        {
            tcp[20] = 2; tcp[21] = 4; // kind MSS, length 4
            BinaryPrimitives.WriteUInt16BigEndian(tcp.AsSpan(22), mss);
        }
        BinaryPrimitives.WriteUInt16BigEndian(tcp.AsSpan(16), Checksum(source.Address, destination.Address, tcp));
        return tcp;
    }

    static ushort Checksum(IPAddress src, IPAddress dst, ReadOnlySpan<byte> tcp)
    {
        uint sum = 0;
        void Add(ReadOnlySpan<byte> b)
        {
            for (int i = 0; i + 1 < b.Length; i += 2) sum += (uint)(b[i] << 8 | b[i + 1]);
            if ((b.Length & 1) == 1) sum += (uint)(b[^1] << 8);
        }
        Add(src.GetAddressBytes());
        Add(dst.GetAddressBytes());
        sum += 6;                       // protocol TCP
        sum += (uint)tcp.Length;        // TCP length
        Add(tcp);
        while (sum >> 16 != 0) sum = (sum & 0xffff) + (sum >> 16);
        return (ushort)~sum;
    }
}
