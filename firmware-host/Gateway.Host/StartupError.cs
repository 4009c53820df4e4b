using Gateway.Storage;
using Microsoft.AspNetCore.Connections;

namespace Gateway.Host;

/// <summary>
/// Start-up failures caused by something else on the machine (a port or the data directory
/// taken by another process): one line naming the key. They can clear up, so the exit status
/// lets systemd try again.
/// </summary>
internal static class StartupError
{
    // Kestrel's listeners are named after their section.
    private static readonly (string Listener, string Key)[] PortKeys = [("mqtt", "Mqtt:Port"), ("http", "Http:Port")];

    public static string? Describe(Exception exception, GatewayEndpoints? endpoints)
    {
        for (var current = exception; current is not null; current = current.InnerException)
        {
            switch (current)
            {
                case StoreInUseException inUse:
                    return $"Storage:DataDirectory: {inUse.Message}";
                case IOException { InnerException: AddressInUseException } bind:
                    // "Failed to bind to address http://127.0.0.1:1883: address already in use."
                    foreach (var (listener, key) in PortKeys)
                    {
                        if (endpoints is not null && endpoints.Has(listener) && bind.Message.Contains("//" + endpoints.Describe(listener) + ":", StringComparison.Ordinal))
                        {
                            return $"{key}: {endpoints.Describe(listener)} is already in use by another process";
                        }
                    }

                    return bind.Message;
            }
        }

        return null;
    }
}
