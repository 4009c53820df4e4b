using System.Collections.Concurrent;

namespace Gateway.Routing;

/// <summary>The state of a link (an uplink to a cloud broker), as shown on LEDs, metrics and the dashboard.</summary>
public enum LinkState
{
    Unknown,
    Connected,
    Buffering,
    Draining,
    Stalled,
    Failed,
}

/// <summary>
/// Where links report their state and indicators (status LEDs, metrics) read it. Lives in the
/// router project because every component that has a state depends on the router already.
/// </summary>
public sealed class GatewayStatus
{
    private readonly ConcurrentDictionary<string, LinkState> _links = new(StringComparer.Ordinal);

    /// <summary>Raised after a link's state changed: (link name, new state).</summary>
    public event Action<string, LinkState>? LinkStateChanged;

    public void SetLinkState(string link, LinkState state)
    {
        ArgumentNullException.ThrowIfNull(link);
        var previous = _links.GetValueOrDefault(link);
        _links[link] = state;
        if (previous != state)
        {
            LinkStateChanged?.Invoke(link, state);
        }
    }

    public LinkState GetLinkState(string link) => _links.GetValueOrDefault(link);

    public IReadOnlyDictionary<string, LinkState> Links => _links;
}
