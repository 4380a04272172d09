# median.awk: median() for the report scripts (awk -f median.awk -f X.awk).
# POSIX awk (mawk): no asort.

# The median of the numbers in the space-separated @list ("" if none).
function median(list, n,    a, i, j, t, k) {
	n = split(list, a, " ")
	if (n == 0)
		return ""
	for (i = 2; i <= n; i++) {
		t = a[i] + 0
		for (j = i - 1; j >= 1 && a[j] + 0 > t; j--)
			a[j + 1] = a[j]
		a[j + 1] = t
	}
	k = int((n + 1) / 2)
	return n % 2 ? a[k] + 0 : (a[k] + a[k + 1]) / 2
}
