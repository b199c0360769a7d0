using System.Net;
using System.Net.Sockets;

namespace Lab.Sockets;

/// <summary>
/// Where the lab may send: loopback (127.0.0.0/8, ::1) and the /24 of each host the lab created (Lab.Hosts.NetHost
/// adds its subnet here when it creates a host and takes it away on Dispose). Every client, load generator and packet
/// sender asks here before a packet leaves: the lab never sends to any other address.
/// </summary>
public static class LabAddresses
{
    static readonly object Gate = new();
    static readonly List<int> Subnets = new();   // the first three bytes of each live host's /24, one entry per host

    /// <summary>True when <paramref name="address"/> is loopback or belongs to one of the lab's live hosts' subnets.</summary>
    public static bool Contains(IPAddress address)
    {
        if (IPAddress.IsLoopback(address)) return true;
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        if (address.AddressFamily != AddressFamily.InterNetwork) return false;
        int subnet = Subnet24(address);
        lock (Gate) return Subnets.Contains(subnet);
    }

    /// <summary>
    /// Throws unless <paramref name="address"/> is loopback or one of the lab's own hosts. Every traffic generator calls
    /// this before sending.
    /// </summary>
    public static void Ensure(IPAddress address, string what = "destination")
    {
        if (!Contains(address))
            throw new ArgumentException(
                $"The {what} ({address}) is neither loopback (127.0.0.0/8, ::1) nor a host the lab created. " +
                "The lab only sends traffic to this machine: use 127.0.0.1, or create a host with NetHost.Create() and use its Address.");
    }

    /// <summary>Allows the /24 that holds <paramref name="address"/> (a host the lab just created).</summary>
    internal static void Add(IPAddress address)
    {
        int subnet = Subnet24(address);
        lock (Gate) Subnets.Add(subnet);
    }

    /// <summary>Takes back one <see cref="Add"/> of the /24 that holds <paramref name="address"/>.</summary>
    internal static void Remove(IPAddress address)
    {
        int subnet = Subnet24(address);
        lock (Gate) Subnets.Remove(subnet);
    }

    static int Subnet24(IPAddress v4)
    {
        var b = v4.GetAddressBytes();
        return b[0] << 16 | b[1] << 8 | b[2];
    }
}
