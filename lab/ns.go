package lab

// InNamespace runs fn on an OS thread that has joined the named network
// namespace (e.g. l.Namespace("client")), then moves the thread back.
// Sockets fn opens stay in that namespace and may be used from any
// goroutine afterwards.
func InNamespace(ns string, fn func() error) error { return inNamespace(ns, fn) }
