-- The school accepted both hospitals' agreements.
UPDATE agreements SET status = 'active' WHERE key = 'state-2027';
-- A student is booked on lake's spring block.
INSERT INTO rotations (capacity_window_id, student, start_date, end_date, status) SELECT c.id, 'Student One', '2027-02-01', '2027-02-28', 'scheduled' FROM capacity_windows c JOIN services s ON s.id = c.service_id JOIN organizations o ON o.id = s.org_id WHERE o.slug = 'lake' AND c.key = 'spring'
