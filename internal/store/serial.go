package store

// IsSerial says whether s is a serial as the store keeps it: lowercase hex,
// at most 64 digits. Serials from requests are checked with it before they
// reach a query or a page.
func IsSerial(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
