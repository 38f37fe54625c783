-- The school edited the terms and sent them back.
UPDATE agreements SET status = 'changes_proposed', proposed = '{"end_date": "2027-08-31", "disciplines": ["nursing"]}' WHERE key = 'state-2027'
