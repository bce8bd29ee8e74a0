// Package doctor checks the host side of a DR setup and says how to fix
// what is wrong: the director must not own the VIP, must not forward, and
// needs its LAN interface up; a real server must hold the VIP on lo with ARP
// suppressed and must not route replies through the director.
//
// The director runs the same checks at start-up and refuses to run when a
// fatal one fails, so a misconfigured host never starts half-working.
package doctor
