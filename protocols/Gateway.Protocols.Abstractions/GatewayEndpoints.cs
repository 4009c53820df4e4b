using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Gateway.Protocols;

/// <summary>The listeners the host opened, with the ports actually bound (port 0 picks one).</summary>
public sealed class GatewayEndpoints
{
    private readonly Dictionary<string, (ListenOptions Listen, string PortKey)> _listeners = new(StringComparer.Ordinal);

    public IEnumerable<string> Names => _listeners.Keys;

    /// <summary>The bound port of a listener ("mqtt", "http"), once the server has started.</summary>
    public int GetPort(string name) =>
        _listeners.TryGetValue(name, out var listener) && listener.Listen.EndPoint is IPEndPoint endpoint
            ? endpoint.Port
            : throw new InvalidOperationException($"No listener named '{name}'");

    public bool Has(string name) => _listeners.ContainsKey(name);

    /// <summary>Records a listener as Kestrel configures it.</summary>
    public void Add(string name, string portKey, ListenOptions options) => _listeners[name] = (options, portKey);

    /// <summary>Its address and port, as bound.</summary>
    public string Describe(string name) =>
        _listeners.TryGetValue(name, out var listener) ? listener.Listen.EndPoint.ToString() ?? "?" : "?";

    /// <summary>The configuration key of its port (<c>Mqtt:Port</c>).</summary>
    public string PortKeyOf(string name) => _listeners[name].PortKey;
}
