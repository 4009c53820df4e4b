using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Gateway.Host;

/// <summary>The listeners the host opened, with the ports actually bound (port 0 picks one).</summary>
public sealed class GatewayEndpoints
{
    private readonly Dictionary<string, ListenOptions> _listeners = new(StringComparer.Ordinal);

    public IEnumerable<string> Names => _listeners.Keys;

    /// <summary>The bound port of a listener ("mqtt", "http"), once the server has started.</summary>
    public int GetPort(string name) =>
        _listeners.TryGetValue(name, out var listen) && listen.EndPoint is IPEndPoint endpoint
            ? endpoint.Port
            : throw new InvalidOperationException($"No listener named '{name}'");

    public bool Has(string name) => _listeners.ContainsKey(name);

    internal void Add(string name, ListenOptions options) => _listeners[name] = options;

    internal string Describe(string name) =>
        _listeners.TryGetValue(name, out var listen) ? listen.EndPoint.ToString() ?? "?" : "?";
}
