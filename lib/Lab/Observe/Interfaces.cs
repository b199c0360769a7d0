using System.Net;
using System.Runtime.InteropServices;
using System.Text;
using Lab.Interop;

namespace Lab.Observe;

/// <summary>A network interface as the kernel lists it (RTM_GETLINK) with its addresses (RTM_GETADDR).</summary>
public sealed record NetInterface(string Name, int Index, bool Up, bool Loopback, IReadOnlyList<IPAddress> Addresses)
{
    public override string ToString() =>
        $"{Index}: {Name} {(Up ? "UP" : "DOWN")}{(Loopback ? " LOOPBACK" : "")} {string.Join(" ", Addresses)}";
}

/// <summary>The interfaces of the caller's network namespace, read over rtnetlink (what `ip link` and `ip addr` read).</summary>
public static class Interfaces
{
    /// <summary>Every interface, by index, with its IPv4 and IPv6 addresses (link-local IPv6 ones carry the scope id).</summary>
    public static IReadOnlyList<NetInterface> List()
    {
        using var channel = new NetlinkChannel(netlink.NETLINK_ROUTE);
        var links = new LinkVisitor { Links = new() };
        Span<byte> req = stackalloc byte[netlink.NLMSG_HDRLEN + netlink.NLMSG_ALIGN(Marshal.SizeOf<ifinfomsg>())];
        Request(req, rtnetlink.RTM_GETLINK);
        channel.Dump(req, ref links);

        var addrs = new AddrVisitor { Addresses = new() };
        Span<byte> req2 = stackalloc byte[netlink.NLMSG_HDRLEN + netlink.NLMSG_ALIGN(Marshal.SizeOf<ifaddrmsg>())];
        Request(req2, rtnetlink.RTM_GETADDR);
        channel.Dump(req2, ref addrs);

        return links.Links
            .OrderBy(l => l.Index)
            .Select(l => new NetInterface(l.Name, l.Index, (l.Flags & if_link.IFF_UP) != 0, (l.Flags & if_link.IFF_LOOPBACK) != 0,
                addrs.Addresses.Where(a => a.Index == l.Index).Select(a => a.Address).ToList()))
            .ToList();
    }

    /// <summary>The interface called <paramref name="name"/>, or null.</summary>
    public static NetInterface? Find(string name) => List().FirstOrDefault(i => i.Name == name);

    static void Request(Span<byte> buf, ushort type)
    {
        buf.Clear();
        MemoryMarshal.Write(buf, new nlmsghdr
        {
            nlmsg_len = (uint)buf.Length,
            nlmsg_type = type,
            nlmsg_flags = netlink.NLM_F_REQUEST | netlink.NLM_F_DUMP,
        });
        // The body (ifinfomsg / ifaddrmsg) stays zero: family AF_UNSPEC, every interface.
    }

    /// <summary>Walks the rtattr list after a fixed header, calling back with each attribute's type and data.</summary>
    static IEnumerable<(ushort Type, byte[] Data)> Attributes(ReadOnlySpan<byte> payload, int headerSize)
    {
        var list = new List<(ushort, byte[])>();
        int off = netlink.NLMSG_ALIGN(headerSize);
        while (off + 4 <= payload.Length)
        {
            var a = MemoryMarshal.Read<rtattr>(payload.Slice(off));
            if (a.rta_len < 4 || off + a.rta_len > payload.Length) break;
            list.Add(((ushort)(a.rta_type & 0x3FFF), payload.Slice(off + 4, a.rta_len - 4).ToArray()));
            off += rtnetlink.RTA_ALIGN(a.rta_len);
        }
        return list;
    }

    record struct Link(int Index, string Name, uint Flags);
    record struct Addr(int Index, IPAddress Address);

    struct LinkVisitor : INetlinkVisitor
    {
        public List<Link> Links;

        public void Visit(ushort type, ReadOnlySpan<byte> payload)
        {
            int size = Marshal.SizeOf<ifinfomsg>();
            if (type != rtnetlink.RTM_NEWLINK || payload.Length < size) return;
            var m = MemoryMarshal.Read<ifinfomsg>(payload);
            string name = "";
            foreach (var (t, data) in Attributes(payload, size))
                if (t == if_link.IFLA_IFNAME) name = Encoding.UTF8.GetString(data).TrimEnd('\0');
            Links.Add(new Link(m.ifi_index, name, m.ifi_flags));
        }
    }

    struct AddrVisitor : INetlinkVisitor
    {
        public List<Addr> Addresses;

        public void Visit(ushort type, ReadOnlySpan<byte> payload)
        {
            int size = Marshal.SizeOf<ifaddrmsg>();
            if (type != rtnetlink.RTM_NEWADDR || payload.Length < size) return;
            var m = MemoryMarshal.Read<ifaddrmsg>(payload);
            byte[]? local = null, address = null;
            foreach (var (t, data) in Attributes(payload, size))
            {
                if (t == if_addr.IFA_LOCAL) local = data;
                else if (t == if_addr.IFA_ADDRESS) address = data;
            }
            // IPv4: IFA_LOCAL is this host's address (IFA_ADDRESS is the peer on point-to-point links). IPv6: IFA_ADDRESS.
            var bytes = m.ifa_family == 2 ? local ?? address : address ?? local;
            if (bytes is not { Length: 4 or 16 }) return;
            var ip = new IPAddress(bytes);
            if (ip.IsIPv6LinkLocal) ip.ScopeId = m.ifa_index;
            Addresses.Add(new Addr((int)m.ifa_index, ip));
        }
    }
}
